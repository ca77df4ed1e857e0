using System.Globalization;
using MassTransit;
using MeshBus.Load;

// The baseline responder of the load tool (bench/MeshBus.Load): plain MassTransit on RabbitMQ, persistent messages and
// publisher confirms (MassTransit's defaults), one consumer answering LoadPing with LoadPong. No MeshBus code.
// Usage: meshbus-load-plain AMQP-URI QUEUE PREFETCH. Prints "ready" when consuming; on a line "stats" on standard input
// it prints "stats <bytes allocated since start>"; ends on end of input or "stop".
if (args.Length != 3 || !Uri.TryCreate(args[0], UriKind.Absolute, out var amqp) || !ushort.TryParse(args[2], out var prefetch))
{
    await Console.Error.WriteLineAsync("usage: meshbus-load-plain AMQP-URI QUEUE PREFETCH");
    return 2;
}

var user = amqp.UserInfo.Split(':');
var vhost = Uri.UnescapeDataString(amqp.AbsolutePath.TrimStart('/'));
var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
{
    cfg.Host(amqp.Host, (ushort)amqp.Port, vhost.Length == 0 ? "/" : vhost, h =>
    {
        h.Username(Uri.UnescapeDataString(user[0]));
        h.Password(Uri.UnescapeDataString(user.ElementAtOrDefault(1) ?? ""));
        h.PublisherConfirmation = true;
    });
    cfg.PrefetchCount = prefetch;
    cfg.ReceiveEndpoint(args[1], e =>
    {
        e.ConfigureConsumeTopology = false;
        e.Consumer<EchoConsumer>();
    });
});
using var started = new CancellationTokenSource(TimeSpan.FromSeconds(60));
await bus.StartAsync(started.Token);
Console.WriteLine("ready");
try
{
    while (await Console.In.ReadLineAsync() is { } line && line != "stop")
    {
        if (line == "stats")
        {
            Console.WriteLine("stats " + GC.GetTotalAllocatedBytes().ToString(CultureInfo.InvariantCulture));
        }
    }
}
finally
{
    await bus.StopAsync(CancellationToken.None);
}

return 0;

namespace MeshBus.Load
{
    /// <summary>Baseline request (same message type name as the load tool's, so MassTransit routes it).</summary>
    public sealed record LoadPing(Guid Id);

    /// <summary>Baseline response.</summary>
    public sealed record LoadPong(Guid Id);

    /// <summary>Answers every ping.</summary>
    public sealed class EchoConsumer : IConsumer<LoadPing>
    {
        public Task Consume(ConsumeContext<LoadPing> context) => context.RespondAsync(new LoadPong(context.Message.Id));
    }
}
