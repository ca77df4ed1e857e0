using System.Text;
using MeshBus.Ledger.Merkle;

namespace MeshBus.Ledger.Tests;

/// <summary>Behaviour every store must show; run on SQLite and on PostgreSQL.</summary>
public abstract class LogContract
{
    protected abstract Task<SqlLineageLog> OpenAsync();

    protected static LineageEntry Entry(string key, string? data = null) => new(key, "GrantIssued", Encoding.UTF8.GetBytes(data ?? "{\"key\":\"" + key + "\"}"));

    [Fact]
    public async Task Appends_get_consecutive_indices_and_the_root_of_RFC_6962()
    {
        await using var log = await OpenAsync();
        var entries = Enumerable.Range(0, 37).Select(i => Entry($"decision:{i}")).ToList();
        for (var i = 0; i < entries.Count; i++)
        {
            var r = await log.AppendAsync(entries[i]);
            Assert.Equal(i, r.Index);
            Assert.False(r.AlreadyPresent);
        }

        var head = await log.GetTreeHeadAsync();
        Assert.Equal(37, head.Size);
        Assert.Equal(MerkleTree.RootOf(entries.Select(e => e.Data).ToList()), head.RootHash);
        for (var size = 1; size <= 37; size += 5)
        {
            var root = MerkleTree.RootOf(entries.Take(size).Select(e => e.Data).ToList());
            Assert.Equal(root, await log.GetRootAsync(size));
            for (var i = 0; i < size; i++)
            {
                var proof = await log.GetInclusionProofAsync(i, size);
                Assert.True(MerkleTree.VerifyInclusion(MerkleTree.LeafHash(entries[i].Data), i, size, proof, root).IsValid);
            }

            var c = await log.GetConsistencyProofAsync(size, 37);
            Assert.True(MerkleTree.VerifyConsistency(size, 37, root, head.RootHash, c).IsValid);
        }
    }

    [Fact]
    public async Task A_redelivered_entry_is_not_appended_twice()
    {
        await using var log = await OpenAsync();
        var first = await log.AppendAsync(Entry("decision:a", "one"));
        await log.AppendAsync(Entry("decision:b"));
        var again = await log.AppendAsync(Entry("decision:a", "one"));
        var conflicting = await log.AppendAsync(Entry("decision:a", "two"));
        Assert.True(again.AlreadyPresent);
        Assert.Equal(first.Index, again.Index);
        Assert.Equal("one", Encoding.UTF8.GetString(conflicting.StoredData));
        Assert.True(conflicting.AlreadyPresent);
        Assert.Equal(2, (await log.GetTreeHeadAsync()).Size);

        // Redelivered many times at once, within one group commit and across several.
        var burst = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => log.AppendAsync(Entry("decision:c"))));
        Assert.Single(burst.Select(r => r.Index).Distinct());
        Assert.Equal(1, burst.Count(r => !r.AlreadyPresent));
        Assert.Equal(3, (await log.GetTreeHeadAsync()).Size);
    }

    [Fact]
    public async Task Concurrent_appenders_leave_no_gap_and_no_duplicate_index()
    {
        await using var log = await OpenAsync();
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(t => Task.Run(async () =>
        {
            var list = new List<AppendResult>();
            for (var i = 0; i < 50; i++)
            {
                list.Add(await log.AppendAsync(Entry($"e:{t}-{i}")));
            }

            return list;
        })));
        var indices = results.SelectMany(r => r).Select(r => r.Index).Order().ToList();
        Assert.Equal(Enumerable.Range(0, 800).Select(i => (long)i), indices);
        var head = await log.GetTreeHeadAsync();
        var all = new List<byte[]>();
        await foreach (var rec in log.ReadEntriesAsync())
        {
            all.Add(rec.Data);
        }

        Assert.Equal(MerkleTree.RootOf(all), head.RootHash);
    }

    [Fact]
    public async Task Records_are_found_by_key_index_and_intent()
    {
        await using var log = await OpenAsync();
        await log.AppendBatchAsync([Entry("intent:i1"), Entry("decision:i1"), Entry("decision:i2"), Entry("execution:i1:3")]);
        Assert.Equal(1, (await log.GetByKeyAsync("decision:i1"))!.Index);
        Assert.Equal("decision:i2", (await log.GetAsync(2))!.Key);
        Assert.Null(await log.GetAsync(4));
        Assert.Null(await log.GetByKeyAsync("nope"));
        Assert.Equal(["intent:i1", "decision:i1", "execution:i1:3"], (await log.FindAsync("i1")).Select(r => r.Key));
    }

    [Fact]
    public async Task A_batch_with_a_repeated_key_appends_it_once()
    {
        await using var log = await OpenAsync();
        var r = await log.AppendBatchAsync([Entry("k:1"), Entry("k:2"), Entry("k:1")]);
        Assert.Equal([0L, 1L, 0L], r.Select(x => x.Index));
        Assert.True(r[2].AlreadyPresent);
    }

    [Fact]
    public async Task Proofs_for_sizes_beyond_the_log_are_refused()
    {
        await using var log = await OpenAsync();
        await log.AppendAsync(Entry("k:1"));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => log.GetInclusionProofAsync(0, 5));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => log.GetInclusionProofAsync(1, 1));
        await Assert.ThrowsAsync<ArgumentException>(() => log.AppendAsync(new LineageEntry("", "t", [])));
    }

    [Fact]
    public async Task Checkpoints_cosignatures_and_witness_state_are_stored()
    {
        await using var log = await OpenAsync();
        var at = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        Assert.True(await log.AddCheckpointAsync(new StoredCheckpoint(3, new byte[32], "note3", at)));
        Assert.False(await log.AddCheckpointAsync(new StoredCheckpoint(3, new byte[32], "other", at)));
        Assert.True(await log.AddCheckpointAsync(new StoredCheckpoint(5, new byte[32], "note5", at)));
        Assert.Equal("note5", (await log.GetLatestCheckpointAsync())!.Note);
        Assert.Equal("note3", (await log.GetCheckpointAsync(3))!.Note);
        Assert.Equal(2, (await log.GetCheckpointsAsync()).Count);
        Assert.True(await log.AddCosignatureAsync(3, "w", "— w abc"));
        Assert.False(await log.AddCosignatureAsync(3, "w", "— w abc"));
        Assert.Equal(["— w abc"], await log.GetCosignaturesAsync(3));

        var s1 = new WitnessState("o", 3, new byte[32], "n3");
        Assert.True(await log.CompareAndSwapWitnessStateAsync("o", null, s1));
        Assert.False(await log.CompareAndSwapWitnessStateAsync("o", null, s1));
        var s2 = s1 with { Size = 5 };
        Assert.True(await log.CompareAndSwapWitnessStateAsync("o", s1, s2));
        Assert.False(await log.CompareAndSwapWitnessStateAsync("o", s1, s2 with { Size = 6 }));
        Assert.Equal(5, (await log.GetWitnessStateAsync("o"))!.Size);
    }
}

public sealed class SqliteLogTests : LogContract, IDisposable
{
    private readonly TempDir _dir = new();

    protected override Task<SqlLineageLog> OpenAsync() => Task.FromResult(LineageLogs.OpenSqlite(_dir.File("lineage.db")));

    [Fact]
    public async Task The_log_survives_reopening()
    {
        await using (var log = await OpenAsync())
        {
            await log.AppendBatchAsync([Entry("a:1"), Entry("a:2"), Entry("a:3")]);
        }

        await using var again = await OpenAsync();
        Assert.Equal(3, (await again.GetTreeHeadAsync()).Size);
        Assert.Equal(3, (await again.AppendAsync(Entry("a:4"))).Index);
        Assert.True((await again.AppendAsync(Entry("a:2"))).AlreadyPresent);
    }

    [Fact]
    public async Task The_witness_state_is_stamped_with_the_logs_clock()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
        await using (var log = LineageLogs.OpenSqlite(_dir.File("clock.db"), new LineageLogOptions { TimeProvider = time }))
        {
            Assert.True(await log.CompareAndSwapWitnessStateAsync("o", null, new WitnessState("o", 3, new byte[32], "n3")));
        }

        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_dir.File("clock.db")};Pooling=False");
        connection.Open();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT updated_at FROM witness_state WHERE origin = 'o'";
        Assert.Equal(1_700_000_000_000L, (long)command.ExecuteScalar()!);
    }

    public void Dispose() => _dir.Dispose();
}

[Collection("postgres")]
[Trait("Category", "Integration")]
public sealed class PostgresLogTests(MeshBus.TestSupport.PostgresFixture postgres) : LogContract
{
    protected override async Task<SqlLineageLog> OpenAsync() => await LineageLogs.OpenPostgresAsync(await postgres.CreateDatabaseAsync("ledger"));

    [Fact]
    public async Task Two_instances_on_one_database_append_without_gaps()
    {
        var cs = await postgres.CreateDatabaseAsync("ledger");
        await using var a = await LineageLogs.OpenPostgresAsync(cs);
        await using var b = await LineageLogs.OpenPostgresAsync(cs);
        var tasks = Enumerable.Range(0, 400).Select(i => (i % 2 == 0 ? a : b).AppendAsync(Entry($"e:{i % 300}"))).ToList();
        var results = await Task.WhenAll(tasks);
        Assert.Equal(300, results.Select(r => r.Index).Distinct().Count());
        var head = await a.GetTreeHeadAsync();
        Assert.Equal(300, head.Size);
        var all = new List<byte[]>();
        await foreach (var rec in b.ReadEntriesAsync())
        {
            all.Add(rec.Data);
        }

        Assert.Equal(MerkleTree.RootOf(all), head.RootHash);
    }

    [Fact(Timeout = 60_000)]
    public async Task Opening_touches_no_database_and_the_first_use_creates_the_schema()
    {
        // Nothing listens on port 1: opening must not notice (dependency-injection factories do not block on I/O) ...
        await using (var unreachable = LineageLogs.OpenPostgres("Host=127.0.0.1;Port=1;Username=postgres;Timeout=2"))
        {
            await Assert.ThrowsAnyAsync<Exception>(() => unreachable.AppendAsync(Entry("a:1")));
        }

        // ... and on a fresh database, uses racing each other create the schema once and then work.
        await using var log = LineageLogs.OpenPostgres(await postgres.CreateDatabaseAsync("ledger"));
        var appended = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => log.AppendAsync(Entry($"a:{i}"))));
        Assert.Equal(8, appended.Select(a => a.Index).Distinct().Count());
        Assert.Equal(8, (await log.GetTreeHeadAsync()).Size);
    }
}
