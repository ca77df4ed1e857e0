using System.Collections.Concurrent;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Integration.Tests.Processes;
using MeshBus.Persistence;
using MeshBus.TestSupport;
using MeshBus.Trust;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Sync;

/// <summary>
/// The sync watchdog as a fleet runs it (issue 18): Sync replicas as their own processes on RabbitMQ, sharing one
/// PostgreSQL database (watchdog sagas, per-peer sync state) and one clustered Quartz schedule, on the wall clock. The
/// tick-exact deadline is tested with controlled time in tests/MeshBus.Workers.Tests/Sync/PeerWatchdogTests.cs; here the
/// deadline must survive the crash of the replica that took the heartbeat and fire exactly once across the replicas.
/// </summary>
[Collection("rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class PeerWatchdogProcessTests(RabbitMqFixture rabbit, PostgresFixture postgres, ITestOutputHelper output) : IAsyncLifetime
{
    // Long enough for a replica to be killed and restarted on a loaded machine before the deadline.
    private static readonly TimeSpan StallAfter = TimeSpan.FromSeconds(30);
    private readonly WorkerRun _run = new(rabbit.AmqpUri, "watchdog", output);
    private string _database = "";

    public async Task InitializeAsync() => _database = await postgres.CreateDatabaseAsync("watchdog");

    public async Task DisposeAsync()
    {
        foreach (var name in new[] { "sync-peer-governance", "sync-peer-lapses", "sync-peer-watchdog", "test-watchdog-observer" })
        {
            _run.RemoveAtEnd(_run.Prefix + name);
        }

        foreach (var type in typeof(MeshBus.Workers.Sync.Watchdog.PeerSyncProgressed).Assembly.GetTypes().Where(t => t.Namespace == typeof(MeshBus.Workers.Sync.Watchdog.PeerSyncProgressed).Namespace))
        {
            _run.RemoveAtEnd($"{_run.Prefix}{type.Namespace}:{type.Name}");
        }

        await _run.DisposeAsync();
        await postgres.DropDatabaseAsync(_database);
    }

    [Fact(Timeout = 180_000)]
    public async Task Across_two_sync_replicas_and_a_crash_and_restart_the_stall_deadline_fires_once_on_the_durable_scheduler()
    {
        var now = DateTimeOffset.UtcNow;
        var keyDir = Path.Combine(_run.DataDirectory, "keys");
        DomainAdministration.Initialize(keyDir, _run.Domain, now);
        // The peer: its root pinned here and its key set accepted (as `meshbus trust add` writes them).
        var peerDomain = $"p{_run.Id}.example/prod";
        var peerDir = Path.Combine(_run.DataDirectory, "peer-keys");
        var peerKeys = DomainKeys.Load(DomainAdministration.Initialize(peerDir, peerDomain, now).DirectoryPath, KeyUsage.Envelope);
        Directory.CreateDirectory(Path.Combine(keyDir, "trust"));
        File.Copy(Path.Combine(peerDir, "root.vkey"), Path.Combine(keyDir, "trust", "peer.vkey"));
        File.Copy(Path.Combine(peerDir, "keyset.json"), Path.Combine(keyDir, "trust", "peer.keyset.json"));
        var policy = _run.WritePolicy(keyDir, now);
        var settings = new Dictionary<string, string>
        {
            ["Storage__Provider"] = "Postgres",
            ["Storage__ConnectionString"] = _database,
            ["Sync__PeerStallAfter"] = StallAfter.ToString("c"),
        };
        var first = _run.Start("sync", keyDir, policy, settings, "sync-1");
        _run.Start("sync", keyDir, policy, settings, "sync-2");
        await Task.WhenAll(_run.Workers.Select(w => w.WaitReadyAsync(TimeSpan.FromSeconds(60))));

        var lapses = new ConcurrentQueue<TrustLapsed>();
        var halts = new ConcurrentQueue<HaltExecution>();
        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((_, cfg) =>
        {
            _run.ConfigureHost(cfg);
            cfg.ReceiveEndpoint(_run.Prefix + "test-watchdog-observer", e =>
            {
                e.Handler<TrustLapsed>(c => { lapses.Enqueue(c.Message); return Task.CompletedTask; });
                e.Handler<HaltExecution>(c => { halts.Enqueue(c.Message); return Task.CompletedTask; });
            });
        }));
        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        await using var pool = NpgsqlDataSource.Create(_database);
        var store = SqlPeerSyncStore.Postgres(pool);
        try
        {
            // The peer's heartbeat as the bridge delivers it; either replica takes it and schedules the deadline.
            var sentAt = DateTimeOffset.UtcNow;
            await bus.Publish(new GovernanceSigner(() => peerKeys.Signer(KeyUsage.Envelope, sentAt)).Sign(
                new DomainHeartbeat(peerDomain, sentAt.ToUnixTimeMilliseconds(), sentAt, peerKeys.KeySet.Sequence, 1, 0, "")));
            var deadline = sentAt + StallAfter;
            await WaitForAsync("the heartbeat in the shared sync state", async () => await store.GetAsync(peerDomain, default) is { HeartbeatSequence: > 0 });
            // Time for the watchdog's schedule to be stored (it follows the heartbeat on the bus).
            await WaitForAsync("the deadline stored in the job store", async () => await CountAsync(pool, "SELECT count(*) FROM qrtz_triggers") > 0);

            // A crash of one replica and its restart, before the deadline.
            await first.KillAsync();
            var restarted = _run.Start("sync", keyDir, policy, settings, "sync-1b");
            await restarted.WaitReadyAsync(TimeSpan.FromSeconds(60));
            Assert.True(DateTimeOffset.UtcNow < deadline - TimeSpan.FromSeconds(1), "the restart took longer than the stall bound; raise StallAfter");

            while (DateTimeOffset.UtcNow < deadline - TimeSpan.FromMilliseconds(300))
            {
                Assert.Empty(lapses);
                Assert.Empty(halts);
                await Task.Delay(100);
            }

            await WaitForAsync("the lapse", () => Task.FromResult(!lapses.IsEmpty), TimeSpan.FromSeconds(30));
            var observed = DateTimeOffset.UtcNow;
            // Room for a second firing, or a second replica's copy, to show up if there were one.
            await Task.Delay(TimeSpan.FromSeconds(4));
            var lapse = Assert.Single(lapses);
            output.WriteLine($"deadline {deadline:HH:mm:ss.fff}; lapse signed {lapse.LapsedAt:HH:mm:ss.fff}; observed {observed:HH:mm:ss.fff}");
            Assert.Equal((GovernanceScope.Peer, peerDomain, GovernanceReason.SyncStalled), (lapse.Scope, lapse.Subject, lapse.Reason));
            Assert.True(lapse.LapsedAt >= deadline, $"lapsed at {lapse.LapsedAt:O}, before the deadline {deadline:O}");
            var halt = Assert.Single(halts);
            Assert.Equal((GovernanceScope.Peer, peerDomain, GovernanceReason.SyncStalled), (halt.Scope, halt.Subject, halt.Reason));
            Assert.Equal(nameof(GovernanceReason.SyncStalled), (await store.GetAsync(peerDomain, default))!.Lapse);
        }
        catch (Exception) when (Report())
        {
            throw;
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }

    private bool Report()
    {
        output.WriteLine(_run.Output);
        return false;
    }

    private static async Task<long> CountAsync(NpgsqlDataSource pool, string sql)
    {
        try
        {
            await using var cmd = pool.CreateCommand(sql);
            return (long)(await cmd.ExecuteScalarAsync())!;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0;
        }
    }

    private static async Task WaitForAsync(string what, Func<Task<bool>> probe, TimeSpan? bound = null)
    {
        var deadline = DateTime.UtcNow + (bound ?? TimeSpan.FromSeconds(20));
        while (!await probe())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(50);
        }
    }
}
