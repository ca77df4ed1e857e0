using System.Diagnostics;
using System.Text.Json;
using MeshBus.Cli;
using MeshBus.Cli.Commands.Status;
using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Persistence;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Enforce.Lifecycle;
using MeshBus.Workers.Lineage;
using Npgsql;
using Xunit;

namespace MeshBus.Integration.Tests.Fleet;

/// <summary>
/// <c>meshbus status</c> against a real PostgreSQL store written by the workers' own stores: the lineage log, the
/// Authorize quarantine table and the saga table the Enforce worker's intent lifecycles live in.
/// </summary>
[Collection("postgres")]
[Trait("Category", "Integration")]
public sealed class StatusCommandTests(PostgresFixture postgres) : IAsyncLifetime, IDisposable
{
    private const string Domain = "acme.example/prod";
    private const string Peer = "partner.example/prod";
    private readonly string _keys = Path.Combine(Path.GetTempPath(), "meshbus-status-" + Guid.NewGuid().ToString("N")[..8]);
    private string _database = "";

    public async Task InitializeAsync() => _database = await postgres.CreateDatabaseAsync("status");

    public async Task DisposeAsync()
    {
        if (_database.Length > 0)
        {
            NpgsqlConnection.ClearAllPools();
            await postgres.DropDatabaseAsync(_database);
        }
    }

    public void Dispose()
    {
        if (Directory.Exists(_keys))
        {
            Directory.Delete(_keys, recursive: true);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Status_reports_policies_key_set_peers_executions_quarantines_and_lineage_from_the_store()
    {
        var now = DateTimeOffset.UtcNow;
        var keys = DomainAdministration.Initialize(_keys, Domain, now);
        long size;
        await using (var log = await LineageLogs.OpenPostgresAsync(_database))
        {
            await AppendAsync(log, new PolicyPublished(Domain, PolicyScope.Domain, 1, "sha256:one", "{}", now.AddMinutes(-10)));
            await AppendAsync(log, new PolicyPublished(Domain, PolicyScope.Domain, 2, "sha256:two", "{}", now.AddMinutes(-5)));
            await AppendAsync(log, new PolicySynced(Domain, Domain, PolicyScope.Domain, 2, "sha256:two", now.AddMinutes(-5)));
            await AppendAsync(log, new PolicySynced(Domain, Peer, PolicyScope.Domain, 1, "sha256:one", now.AddMinutes(-9)));
            await AppendAsync(log, new TrustLapsed(Domain, GovernanceScope.Peer, Peer, GovernanceReason.SyncStalled, "no heartbeat", now.AddMinutes(-1)));
            var head = await log.GetTreeHeadAsync();
            await log.AddCheckpointAsync(new StoredCheckpoint(head.Size, head.RootHash, "checkpoint note", now));
            await AppendAsync(log, new TrustRestored(Domain, GovernanceScope.Execution, Guid.NewGuid().ToString(), now));
            size = (await log.GetTreeHeadAsync()).Size;
        }

        await using (var quarantine = new PostgresQuarantineState(_database))
        {
            await quarantine.ApplyAsync(Domain + "/agents/rogue", true, now, CancellationToken.None);
            await quarantine.ApplyAsync(Domain + "/agents/forgiven", true, now.AddMinutes(-3), CancellationToken.None);
            await quarantine.ApplyAsync(Domain + "/agents/forgiven", false, now.AddMinutes(-2), CancellationToken.None);
        }

        await WriteSagasAsync("Completed", "Completed", "Executing", "Halted");
        await using (var pool = NpgsqlDataSource.Create(_database))
        {
            var sync = SqlPeerSyncStore.Postgres(pool);
            await sync.RecordHeartbeatAsync(new PeerHeartbeatRecord(Peer, now.AddSeconds(-42), 17, 4, 3, 1, "sha256:fed"), CancellationToken.None);
            await sync.RecordAcknowledgementAsync(Peer, Domain, "Domain", 2, "sha256:two", now.AddMinutes(-4), CancellationToken.None);
            await sync.SetLapseAsync(Peer, "SyncStalled", "no heartbeat for 40 s", CancellationToken.None);
        }

        var (code, output, error) = await RunAsync("status", "--postgres", _database, "--domain", Domain, "--keys", _keys, "--json");

        Assert.True(code == 0, error);
        var status = JsonSerializer.Deserialize<DomainStatus>(output, DomainStatusReader.Json)!;
        var policy = Assert.Single(status.Policies);
        Assert.Equal((Domain, "Domain", 2L, "sha256:two"), (policy.Domain, policy.Scope, policy.Epoch, policy.Digest));
        Assert.Equal([(Domain, 2L), (Peer, 1L)], policy.AppliedBy.Select(a => (a.Publisher, a.Epoch)));
        Assert.Equal(keys.KeySet.Sequence, Assert.Single(status.KeySets, k => k.Domain == Domain).Sequence);
        var peer = Assert.Single(status.Peers);
        Assert.Equal(Peer, peer.Domain);
        Assert.Equal(("lapsed", "SyncStalled"), (peer.Trust!.State, peer.Trust.Reason));
        Assert.Equal((17L, 4L, 3L, "SyncStalled"), (peer.Sync!.HeartbeatSequence, peer.Sync.KeySetSequence, peer.Sync.DomainPolicyEpoch, peer.Sync.Lapse));
        Assert.InRange(peer.Sync.HeartbeatAgeSeconds, 41, 120);
        Assert.Equal((Domain, "Domain", 2L), (peer.Sync.Acknowledged.Single().Publisher, peer.Sync.Acknowledged.Single().Scope, peer.Sync.Acknowledged.Single().Epoch));
        Assert.Equal(4, Assert.Single(status.KeySets, k => k.Domain == Peer).Sequence);
        Assert.Equal(2, status.Executions["Completed"]);
        Assert.Equal(1, status.Executions["Executing"]);
        Assert.Equal(1, status.Executions["Halted"]);
        Assert.Equal([Domain + "/agents/rogue"], status.Quarantined.Select(q => q.Agent));
        Assert.Equal(size, status.Lineage.Size);
        Assert.Equal(size - 1, status.Lineage.LastCheckpoint!.Size);

        var text = await RunAsync("status", "--postgres", _database, "--domain", Domain, "--keys", _keys);
        Assert.True(text.Code == 0, text.Err);
        Assert.Contains($"policy       {Domain} Domain epoch 2 sha256:two", text.Out, StringComparison.Ordinal);
        Assert.Contains($"applied by {Peer}: epoch 1 (behind)", text.Out, StringComparison.Ordinal);
        Assert.Contains("executions   Completed 2, Executing 1, Halted 1", text.Out, StringComparison.Ordinal);
        Assert.Contains($"peer         {Peer}: trust lapsed (SyncStalled)", text.Out, StringComparison.Ordinal);
        Assert.Contains("heartbeat #17", text.Out, StringComparison.Ordinal);
        Assert.Contains($"quarantined  {Domain}/agents/rogue", text.Out, StringComparison.Ordinal);
        Assert.Contains($"lineage      {size} entries", text.Out, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task Status_of_a_database_no_worker_has_written_yet_reports_nothing_instead_of_failing()
    {
        var (code, output, error) = await RunAsync("status", "--postgres", _database, "--domain", Domain, "--json");

        Assert.True(code == 0, error);
        var status = JsonSerializer.Deserialize<DomainStatus>(output, DomainStatusReader.Json)!;
        Assert.Empty(status.Policies);
        Assert.Empty(status.Executions);
        Assert.Empty(status.Quarantined);
        Assert.Equal(0, status.Lineage.Size);
        Assert.Null(status.Lineage.LastCheckpoint);
    }

    [Fact(Timeout = 60_000)]
    public async Task Status_of_an_unreachable_database_ends_with_one_line_and_exit_2_within_seconds()
    {
        var clock = Stopwatch.StartNew();
        var (code, _, error) = await RunAsync("status", "--postgres", "Host=127.0.0.1;Port=1;Username=nobody;Timeout=3");

        Assert.Equal(2, code);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("meshbus status: error:", error, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
    }

    [Fact]
    public void The_saga_type_status_counts_is_the_one_Enforce_stores_its_lifecycles_under() =>
        Assert.Equal(DomainStatusReader.IntentLifecycleSagaType, SagaTypeName.Of<IntentLifecycleState>());

    private static async Task AppendAsync<T>(SqlLineageLog log, T message)
        where T : class
    {
        var key = message switch
        {
            PolicyPublished m => LineageKeys.Of(m),
            PolicySynced m => LineageKeys.Of(m),
            TrustLapsed m => LineageKeys.Of(m),
            TrustRestored m => LineageKeys.Of(m),
            _ => throw new ArgumentException(typeof(T).Name),
        };
        await log.AppendAsync(new LineageEntry(key, typeof(T).Name, LineageKeys.Leaf(message)));
    }

    /// <summary>Intent lifecycles as the saga repository stores them (its schema, its type name, its JSON).</summary>
    private async Task WriteSagasAsync(params string[] states)
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using (var ddl = new NpgsqlCommand(
            "CREATE TABLE IF NOT EXISTS saga_state (saga_type text NOT NULL, correlation_id uuid NOT NULL, version integer NOT NULL, data jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (saga_type, correlation_id))",
            connection))
        {
            await ddl.ExecuteNonQueryAsync();
        }

        foreach (var state in states)
        {
            var saga = new IntentLifecycleState { CorrelationId = Guid.NewGuid(), CurrentState = state };
            await using var insert = new NpgsqlCommand("INSERT INTO saga_state (saga_type, correlation_id, version, data) VALUES (@t, @id, 1, @d::jsonb)", connection);
            insert.Parameters.AddWithValue("t", SagaTypeName.Of<IntentLifecycleState>());
            insert.Parameters.AddWithValue("id", saga.CorrelationId);
            insert.Parameters.AddWithValue("d", JsonSerializer.Serialize(saga, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
            await insert.ExecuteNonQueryAsync();
        }
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader("")));
        return (code, output.ToString(), error.ToString());
    }
}
