using System.Collections.Concurrent;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;

namespace MeshBus.Integration.Tests.Foundation;

/// <summary>What the probe consumers saw, per test.</summary>
public sealed class ProbeLog
{
    public ConcurrentQueue<IntentSubmitted> Intents { get; } = new();

    public ConcurrentQueue<Fault<IntentSubmitted>> Faults { get; } = new();

    /// <summary>Consume attempts by intent id (the broker may be shared: count only this test's intents).</summary>
    public ConcurrentDictionary<Guid, int> Attempts { get; } = new();

    public int AttemptsFor(Guid intentId) => Attempts.GetValueOrDefault(intentId);

    public void Attempt(Guid intentId) => Attempts.AddOrUpdate(intentId, 1, (_, n) => n + 1);
}

/// <summary>Consumes intents; throws for <c>Action == "explode"</c> (a consumer that rejects its message).</summary>
public sealed class IntentProbeConsumer(ProbeLog log) : IConsumer<IntentSubmitted>
{
    public Task Consume(ConsumeContext<IntentSubmitted> context)
    {
        log.Attempt(context.Message.IntentId);
        if (context.Message.Action == "explode")
        {
            throw new InvalidOperationException("probe consumer rejects action 'explode'");
        }

        log.Intents.Enqueue(context.Message);
        return Task.CompletedTask;
    }
}

public sealed class FaultProbeConsumer(ProbeLog log) : IConsumer<Fault<IntentSubmitted>>
{
    public Task Consume(ConsumeContext<Fault<IntentSubmitted>> context)
    {
        log.Faults.Enqueue(context.Message);
        return Task.CompletedTask;
    }
}

internal sealed class NoWorker : IMeshBusWorker
{
    public string Name => "foundation-tests";

    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
    }
}

/// <summary>
/// A host built with <see cref="MeshBusServiceCollectionExtensions.AddMeshBus"/> on the test broker, with one intent
/// consumer on a queue named for this test alone, and a raw RabbitMQ.Client channel to publish and inspect with.
/// Queues and exchanges it made are deleted afterwards (the broker may be shared).
/// </summary>
public sealed class RabbitMqBusHarness : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly IConnection _connection;

    private RabbitMqBusHarness(IHost host, IConnection connection, IChannel channel, string queue, ProbeLog log)
    {
        _host = host;
        _connection = connection;
        Channel = channel;
        Queue = queue;
        Log = log;
    }

    public IChannel Channel { get; private set; }

    /// <summary>The consumer's queue (and exchange) name; its error queue is <c>Queue + "_error"</c>.</summary>
    public string Queue { get; }

    public string ErrorQueue => Queue + "_error";

    public string FaultQueue => Queue + "-faults";

    public ProbeLog Log { get; }

    public static async Task<RabbitMqBusHarness> StartAsync(Uri amqp, int immediateRetries = 0, bool withFaultProbe = false)
    {
        var queue = "foundation-" + Guid.NewGuid().ToString("N")[..12];
        var log = new ProbeLog();
        var userInfo = amqp.UserInfo.Split(':');
        var vhost = amqp.AbsolutePath.Trim('/') is { Length: > 0 } v ? Uri.UnescapeDataString(v) : "/";
        string[] args =
        [
            "--MeshBus:Domain=acme.example/foundation-tests",
            "--MeshBus:Transport=RabbitMq",
            $"--MeshBus:ImmediateRetries={immediateRetries}",
            "--RabbitMqTransport:Host=" + amqp.Host,
            "--RabbitMqTransport:Port=" + amqp.Port,
            "--RabbitMqTransport:VirtualHost=" + vhost,
            "--RabbitMqTransport:Username=" + Uri.UnescapeDataString(userInfo[0]),
            "--RabbitMqTransport:Password=" + Uri.UnescapeDataString(userInfo.ElementAtOrDefault(1) ?? ""),
            "--MeshBus:DataDirectory=" + Path.Combine(Path.GetTempPath(), "meshbus-foundation", queue),
        ];
        var builder = Host.CreateApplicationBuilder(args);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(log);
        // Later redelivery goes through MeshBus's scheduler queue, which no worker consumes here: immediate retries only.
        builder.Services.PostConfigure<MeshBusOptions>(o => o.RedeliverySeconds = []);
        builder.Services.AddMeshBus(builder.Configuration, [new NoWorker()], x =>
        {
            x.AddConsumer<IntentProbeConsumer>().Endpoint(e => e.Name = queue);
            if (withFaultProbe)
            {
                x.AddConsumer<FaultProbeConsumer>().Endpoint(e => e.Name = queue + "-faults");
            }
        });
        var host = builder.Build();
        MeshBusHost.ValidateOptions(host.Services);
        await host.StartAsync();
        using (var started = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            await host.Services.GetRequiredService<IBusControl>().WaitForHealthStatus(BusHealthStatus.Healthy, started.Token);
        }

        var connection = await new ConnectionFactory { Uri = amqp }.CreateConnectionAsync();
        var channel = await connection.CreateChannelAsync();
        return new RabbitMqBusHarness(host, connection, channel, queue, log);
    }

    /// <summary>Publishes bytes as a non-.NET agent would: to an exchange, with a content type and headers.</summary>
    public async Task PublishAsync(string exchange, byte[] body, string contentType, IDictionary<string, object?>? headers = null)
    {
        var properties = new BasicProperties
        {
            ContentType = contentType,
            DeliveryMode = DeliveryModes.Persistent,
            MessageId = Guid.NewGuid().ToString(),
            Headers = headers ?? new Dictionary<string, object?>(),
        };
        await Channel.BasicPublishAsync(exchange, "", mandatory: false, properties, body);
    }

    /// <summary>Waits until the condition holds, or fails the test after the timeout.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what, int seconds = 30)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Takes the next message from the endpoint's error queue, waiting for it to arrive.</summary>
    public async Task<BasicGetResult> NextErrorAsync(int seconds = 30)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            try
            {
                if (await Channel.BasicGetAsync(ErrorQueue, autoAck: true) is { } result)
                {
                    return result;
                }
            }
            catch (RabbitMQ.Client.Exceptions.OperationInterruptedException) when (DateTime.UtcNow < until)
            {
                // the error queue is declared on the first fault; a get on a missing queue closes the channel
                await Channel.DisposeAsync();
                Channel = await _connection.CreateChannelAsync();
            }

            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"no message in {ErrorQueue}");
            }

            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
        await using var cleanup = await _connection.CreateChannelAsync();
        foreach (var name in new[] { Queue, ErrorQueue, Queue + "_skipped", FaultQueue, FaultQueue + "_error" })
        {
            await cleanup.QueueDeleteAsync(name, ifUnused: false, ifEmpty: false);
            await cleanup.ExchangeDeleteAsync(name, ifUnused: false);
        }

        await Channel.DisposeAsync();
        await _connection.DisposeAsync();
    }
}
