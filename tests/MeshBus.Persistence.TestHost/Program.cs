using MassTransit;
using MeshBus.Persistence;
using MeshBus.Persistence.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

// Usage: TestHost --provider sqlite|postgres --connection CS --rabbitmq URI --scheduler-queue Q
//                 [--saga-queue Q] [--clustered] [--instance-id ID] [--hold MS]
// Prints "READY" once the bus (and with it the Quartz scheduler) has started; runs until killed or stdin closes.
var settings = HostSettings.Parse(args);
var store = new SqlStoreOptions { Provider = settings.Provider, ConnectionString = settings.Connection };

var builder = Host.CreateApplicationBuilder();
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
builder.Services.AddMeshBusQuartz(store, settings.Clustered, o =>
{
    o.InstanceId = settings.InstanceId;
    if (settings.Hold is { } hold)
    {
        o.ConfigureQuartz = q => q.AddJobListener(new HoldJobListener(hold), [GroupMatcher<JobKey>.AnyGroup()]);
    }
});
builder.Services.AddMassTransit(x =>
{
    x.AddMeshBusScheduler(settings.SchedulerQueue);
    if (settings.SagaQueue is not null)
    {
        x.AddSagaStateMachine<CounterStateMachine, CounterState, CounterStateDefinition>()
            .Endpoint(e => e.Name = settings.SagaQueue)
            .SqlRepository(store);
    }

    x.UsingRabbitMq((context, cfg) =>
    {
        cfg.Host(settings.RabbitMq);
        cfg.UseMeshBusScheduler(settings.SchedulerQueue);
        cfg.ConfigureEndpoints(context);
    });
});

using var host = builder.Build();
await host.StartAsync();
await host.Services.GetRequiredService<IBusControl>().WaitForHealthStatus(BusHealthStatus.Healthy, TimeSpan.FromSeconds(30));
Console.WriteLine("READY");
Console.Out.Flush();

// The test ends a graceful run by closing stdin; a kill -9 ends it without any of this.
await Task.Run(() => Console.In.ReadToEnd());
await host.StopAsync();

internal sealed record HostSettings(StorageProvider Provider, string Connection, Uri RabbitMq, string SchedulerQueue, string? SagaQueue, bool Clustered, string? InstanceId, TimeSpan? Hold)
{
    public static HostSettings Parse(string[] args)
    {
        string? Value(string name)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        }

        string Required(string name) => Value(name) ?? throw new ArgumentException($"missing {name}");

        return new HostSettings(
            Enum.Parse<StorageProvider>(Required("--provider"), ignoreCase: true),
            Required("--connection"),
            new Uri(Required("--rabbitmq")),
            Required("--scheduler-queue"),
            Value("--saga-queue"),
            args.Contains("--clustered"),
            Value("--instance-id"),
            Value("--hold") is { } hold ? TimeSpan.FromMilliseconds(int.Parse(hold, System.Globalization.CultureInfo.InvariantCulture)) : null);
    }
}
