using System.Diagnostics;
using MassTransit;
using MeshBus.Cli;
using MeshBus.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using RabbitMQ.Client;
using Xunit;

namespace MeshBus.Integration.Tests.Fleet;

/// <summary>A message the test endpoint fails on.</summary>
public sealed record ErrorsProbe(int Number);

/// <summary>
/// <c>meshbus errors list|replay|purge</c> on the shared RabbitMQ, in a virtual host of its own: the error queue is
/// filled by MassTransit itself (a consumer that throws), so the headers are the ones a worker's faults carry.
/// </summary>
[Collection("rabbitmq")]
[Trait("Category", "Integration")]
public sealed class ErrorsCommandTests(RabbitMqFixture rabbit) : IAsyncLifetime
{
    private const string Endpoint = "authorize-intents";
    private const string PublishSequenceHeader = "x-dotnet-pub-seq-no";
    private readonly string _vhost = "errors-" + Guid.NewGuid().ToString("N")[..8];

    private Uri VhostUri => new UriBuilder(rabbit.AmqpUri) { Path = "/" + Uri.EscapeDataString(_vhost) }.Uri;

    public async Task InitializeAsync()
    {
        await rabbit.RabbitMqCtlAsync(["add_vhost", _vhost]);
        await rabbit.RabbitMqCtlAsync(["set_permissions", "-p", _vhost, Uri.UnescapeDataString(rabbit.AmqpUri.UserInfo.Split(':')[0]), ".*", ".*", ".*"]);
    }

    public async Task DisposeAsync() => await rabbit.RabbitMqCtlAsync(["delete_vhost", _vhost]);

    [Fact(Timeout = 120_000)]
    public async Task Errors_are_listed_with_their_reason_replayed_to_their_queue_with_headers_kept_and_purged_only_by_name()
    {
        await FailAsync(3);

        var list = await RunAsync("errors", "list", "--rabbitmq", VhostUri.ToString());
        Assert.True(list.Code == 0, list.Err);
        Assert.Contains($"{Endpoint}_error\t3\t", list.Out, StringComparison.Ordinal);
        Assert.Contains("probe rejected on purpose", list.Out, StringComparison.Ordinal);
        Assert.Contains("3 message(s) in error and skipped queues", list.Out, StringComparison.Ordinal);

        var before = await DrainAsync(Endpoint + "_error", requeue: true);
        var replay = await RunAsync("errors", "replay", Endpoint, "--rabbitmq", VhostUri.ToString());
        Assert.True(replay.Code == 0, replay.Err);
        Assert.Contains($"{Endpoint}_error -> {Endpoint}: 3 message(s)", replay.Out, StringComparison.Ordinal);

        var after = await DrainAsync(Endpoint, requeue: false);
        Assert.Equal(before.Select(m => m.MessageId).Order(), after.Select(m => m.MessageId).Order());
        foreach (var message in after)
        {
            var original = before.Single(m => m.MessageId == message.MessageId);
            Assert.Equal(original.Body, message.Body);
            // Every header is kept but RabbitMQ.Client's own publish-confirmation number, which each publisher sets.
            Assert.Equal(original.Headers.Where(h => h.Key != PublishSequenceHeader).OrderBy(h => h.Key), message.Headers.Where(h => h.Key != PublishSequenceHeader).OrderBy(h => h.Key));
            Assert.Contains("MT-Fault-Message", message.Headers.Keys);
        }

        Assert.Empty(await DrainAsync(Endpoint + "_error", requeue: false));

        await FailAsync(2);
        var refused = await RunAsync("errors", "purge", Endpoint, "--rabbitmq", VhostUri.ToString());
        Assert.Equal(2, refused.Code);
        Assert.Contains("_error or _skipped", refused.Err, StringComparison.Ordinal);
        var purge = await RunAsync("errors", "purge", Endpoint + "_error", "--rabbitmq", VhostUri.ToString());
        Assert.True(purge.Code == 0, purge.Err);
        Assert.Contains($"{Endpoint}_error: 2 message(s) deleted", purge.Out, StringComparison.Ordinal);
        Assert.Empty(await DrainAsync(Endpoint + "_error", requeue: false));
    }

    [Fact(Timeout = 60_000)]
    public async Task Errors_with_an_unreachable_broker_end_with_one_line_and_exit_2_within_the_bound()
    {
        var clock = Stopwatch.StartNew();
        var (code, _, error) = await RunAsync("errors", "list", "--rabbitmq", "amqp://u:p@127.0.0.1:1/");

        Assert.Equal(2, code);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("meshbus errors list: error: broker amqp://127.0.0.1:1/", error, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), clock.Elapsed.ToString());
    }

    /// <summary>Runs an endpoint named like Authorize's whose consumer always throws, until <paramref name="count"/> probes are in its error queue.</summary>
    private async Task FailAsync(int count)
    {
        var failed = 0;
        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((context, cfg) =>
        {
            var user = rabbit.AmqpUri.UserInfo.Split(':');
            cfg.Host(rabbit.AmqpUri.Host, (ushort)rabbit.AmqpUri.Port, _vhost, h =>
            {
                h.Username(Uri.UnescapeDataString(user[0]));
                h.Password(Uri.UnescapeDataString(user.ElementAtOrDefault(1) ?? ""));
            });
            cfg.ReceiveEndpoint(Endpoint, e => e.Handler<ErrorsProbe>(_ =>
            {
                Interlocked.Increment(ref failed);
                throw new InvalidOperationException("probe rejected on purpose");
            }));
        }));
        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        await bus.StartAsync(bound.Token);
        try
        {
            var send = await bus.GetSendEndpoint(new Uri("queue:" + Endpoint));
            for (var i = 0; i < count; i++)
            {
                await send.Send(new ErrorsProbe(i), bound.Token);
            }

            // The fault reaches the error queue after the consumer threw: wait for the queue, not for the throw.
            while (await DepthAsync(Endpoint + "_error") < (uint)count)
            {
                await Task.Delay(100, bound.Token);
            }
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }

    private async Task<uint> DepthAsync(string queue)
    {
        await using var connection = await new ConnectionFactory { Uri = VhostUri }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return 0; // MassTransit declares the error queue with the first fault
        }
    }

    /// <summary>Every message in <paramref name="queue"/>: taken, or read and put back.</summary>
    private async Task<List<Captured>> DrainAsync(string queue, bool requeue)
    {
        await using var connection = await new ConnectionFactory { Uri = VhostUri }.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var messages = new List<Captured>();
        var tags = new List<ulong>();
        while (await channel.BasicGetAsync(queue, autoAck: false) is { } m)
        {
            var headers = (m.BasicProperties.Headers ?? new Dictionary<string, object?>())
                .ToDictionary(h => h.Key, h => h.Value is byte[] b ? Convert.ToBase64String(b) : h.Value?.ToString() ?? "");
            messages.Add(new Captured(m.BasicProperties.MessageId ?? "", m.Body.ToArray(), headers));
            tags.Add(m.DeliveryTag);
        }

        foreach (var tag in tags)
        {
            if (requeue)
            {
                await channel.BasicNackAsync(tag, false, requeue: true);
            }
            else
            {
                await channel.BasicAckAsync(tag, false);
            }
        }

        return messages;
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader("")));
        return (code, output.ToString(), error.ToString());
    }

    private sealed record Captured(string MessageId, byte[] Body, Dictionary<string, string> Headers);
}
