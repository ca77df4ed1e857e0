using System.Globalization;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Integration.Tests.Processes;
using MeshBus.TestSupport;
using MeshBus.Trust;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Fleet;

/// <summary>
/// Issue 16's last two metrics, scraped from a running Sync process's <c>/metrics</c> as an operator's Prometheus
/// would: the depth of its endpoints' error queues on RabbitMQ (<c>meshbus_error_queue_depth</c>, read from the broker),
/// and each peer's sync age (<c>meshbus_sync_peer_age_seconds</c>, read from the per-peer sync state in PostgreSQL).
/// </summary>
[Collection("rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class OperatorMetricsTests(RabbitMqFixture rabbit, PostgresFixture postgres, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);
    private readonly WorkerRun _run = new(rabbit.AmqpUri, "metrics", output);
    private string _database = "";

    public async Task InitializeAsync() => _database = await postgres.CreateDatabaseAsync("metrics");

    public async Task DisposeAsync()
    {
        try
        {
            await _run.DisposeAsync();
        }
        finally
        {
            if (_database.Length > 0)
            {
                await postgres.DropDatabaseAsync(_database);
            }
        }
    }

    [Fact(Timeout = 240_000)]
    public async Task A_Sync_replica_exports_its_error_queue_depth_and_each_peers_sync_age()
    {
        var now = DateTimeOffset.UtcNow;
        var keyDir = Path.Combine(_run.DataDirectory, "keys");
        DomainAdministration.Initialize(keyDir, _run.Domain, now);
        // A pinned peer with its key set accepted (as `meshbus trust add` writes them).
        var peerDomain = $"p{_run.Id}.example/prod";
        var peerDir = Path.Combine(_run.DataDirectory, "peer-keys");
        // Keys valid from a minute ago: the heartbeat below is signed in the past.
        var peerKeys = DomainKeys.Load(DomainAdministration.Initialize(peerDir, peerDomain, now.AddMinutes(-1)).DirectoryPath, KeyUsage.Envelope);
        Directory.CreateDirectory(Path.Combine(keyDir, "trust"));
        File.Copy(Path.Combine(peerDir, "root.vkey"), Path.Combine(keyDir, "trust", "peer.vkey"));
        File.Copy(Path.Combine(peerDir, "keyset.json"), Path.Combine(keyDir, "trust", "peer.keyset.json"));
        var policy = _run.WritePolicy(keyDir, now);
        var sync = _run.Start("sync", keyDir, policy, new Dictionary<string, string>
        {
            ["Storage__Provider"] = "Postgres",
            ["Storage__ConnectionString"] = _database,
            ["Health__ErrorQueueInterval"] = "00:00:01",
        });
        await sync.WaitReadyAsync(StepTimeout);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var metrics = new Uri($"http://127.0.0.1:{sync.HealthPort}/metrics");

        // Every endpoint of the process has its error and skipped queue reported, 0 while nothing failed.
        var scraped = await WaitForAsync("error-queue depths", http, metrics, s => Samples(s, "meshbus_error_queue_depth").Any(p => p.Key.EndsWith("_error", StringComparison.Ordinal)));
        var depths = Samples(scraped, "meshbus_error_queue_depth");
        output.WriteLine(string.Join("\n", depths.Select(d => $"{d.Key} {d.Value}")));
        Assert.All(depths, d => Assert.StartsWith(_run.Prefix, d.Key, StringComparison.Ordinal));
        Assert.All(depths, d => Assert.Equal(0, d.Value));
        var errorQueue = depths.Keys.Where(q => q.EndsWith("_error", StringComparison.Ordinal)).Order(StringComparer.Ordinal).First();

        // Two messages dead-lettered there (as MassTransit moves a message that failed): the gauge follows the broker.
        var factory = new RabbitMQ.Client.ConnectionFactory { Uri = rabbit.AmqpUri };
        await using (var connection = await factory.CreateConnectionAsync())
        await using (var channel = await connection.CreateChannelAsync())
        {
            _run.RemoveAtEnd(errorQueue);
            await channel.QueueDeclareAsync(errorQueue, durable: true, exclusive: false, autoDelete: false);
            for (var i = 0; i < 2; i++)
            {
                await channel.BasicPublishAsync("", errorQueue, mandatory: false, new RabbitMQ.Client.BasicProperties { Persistent = true }, "{}"u8.ToArray());
            }
        }

        await WaitForAsync($"depth 2 of {errorQueue}", http, metrics, s => Samples(s, "meshbus_error_queue_depth").GetValueOrDefault(errorQueue) == 2);

        // The peer's heartbeat as the bridge delivers it: Sync records it, the gauge reports its age.
        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((_, cfg) => _run.ConfigureHost(cfg)));
        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync(new CancellationTokenSource(StepTimeout).Token);
        var sentAt = DateTimeOffset.UtcNow.AddSeconds(-10);
        try
        {
            await bus.Publish(new GovernanceSigner(() => peerKeys.Signer(KeyUsage.Envelope, sentAt)).Sign(
                new DomainHeartbeat(peerDomain, sentAt.ToUnixTimeMilliseconds(), sentAt, peerKeys.KeySet.Sequence, 1, 0, "")));
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }

        scraped = await WaitForAsync($"the sync age of {peerDomain}", http, metrics, s => Samples(s, "meshbus_sync_peer_age_seconds", "peer").ContainsKey(peerDomain));
        var age = Samples(scraped, "meshbus_sync_peer_age_seconds", "peer")[peerDomain];
        var expected = (DateTimeOffset.UtcNow - sentAt).TotalSeconds;
        output.WriteLine($"sync age of {peerDomain}: {age:0.0} s (heartbeat signed {expected:0.0} s ago)");
        Assert.InRange(age, 9, expected + 1);
    }

    /// <summary>The samples of <paramref name="metric"/> in a Prometheus text scrape, by the value of one label.</summary>
    private static Dictionary<string, double> Samples(string scrape, string metric, string label = "queue")
    {
        var samples = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in scrape.Split('\n'))
        {
            if (!line.StartsWith(metric + "{", StringComparison.Ordinal))
            {
                continue;
            }

            var start = line.IndexOf($"{label}=\"", StringComparison.Ordinal);
            var close = line.IndexOf('}', StringComparison.Ordinal);
            if (start < 0 || close < 0)
            {
                continue;
            }

            start += label.Length + 2;
            var value = line[start..line.IndexOf('"', start)];
            samples[value] = double.Parse(line[(close + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }

        return samples;
    }

    private async Task<string> WaitForAsync(string what, HttpClient http, Uri metrics, Func<string, bool> done)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            last = await http.GetStringAsync(metrics);
            if (done(last))
            {
                return last;
            }

            await Task.Delay(500);
        }

        Assert.Fail($"timed out after {StepTimeout.TotalSeconds:0} s waiting for {what}; last scrape:\n{string.Join("\n", last.Split('\n').Where(l => l.StartsWith("meshbus_", StringComparison.Ordinal)))}\n{_run.Output}");
        return last;
    }
}
