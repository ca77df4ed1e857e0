using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using MeshBus.Ledger;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MeshBus.Benchmarks;

/// <summary>
/// Durable appends per second with group commit (tree maintenance included) on SQLite (WAL, synchronous=FULL) and
/// PostgreSQL, against plain batched inserts of the same rows into a table without a tree, in the same run.
/// PostgreSQL: MESH_BENCH_POSTGRES (default Host=127.0.0.1;Port=5432;Username=postgres).
/// </summary>
[MemoryDiagnoser]
public class LedgerAppendBenchmarks
{
    private const int Appends = 4000;
    private SqlLineageLog _log = null!;
    private string _dir = "";
    private string _baselineConnection = "";
    private long _next;

    /// <summary>Store under test.</summary>
    [Params("sqlite", "postgres")]
    public string Store { get; set; } = "sqlite";

    [GlobalSetup]
    public async Task SetUpAsync()
    {
        _dir = Directory.CreateTempSubdirectory("meshbus-bench-").FullName;
        if (Store == "sqlite")
        {
            _log = LineageLogs.OpenSqlite(Path.Combine(_dir, "lineage.db"));
            _baselineConnection = $"Data Source={Path.Combine(_dir, "plain.db")}";
            await using var c = new SqliteConnection(_baselineConnection);
            c.Open();
            Exec(c, "PRAGMA journal_mode=WAL; CREATE TABLE plain (idx INTEGER PRIMARY KEY, entry_key TEXT NOT NULL UNIQUE, data BLOB NOT NULL);");
        }
        else
        {
            var server = Environment.GetEnvironmentVariable("MESH_BENCH_POSTGRES") ?? "Host=127.0.0.1;Port=5432;Username=postgres";
            var name = "bench_" + Guid.NewGuid().ToString("N")[..12];
            await using (var c = new NpgsqlConnection(server))
            {
                await c.OpenAsync();
                await new NpgsqlCommand($"CREATE DATABASE {name}", c).ExecuteNonQueryAsync();
            }

            var cs = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
            _log = await LineageLogs.OpenPostgresAsync(cs);
            _baselineConnection = cs;
            await using var p = new NpgsqlConnection(cs);
            await p.OpenAsync();
            await new NpgsqlCommand("CREATE TABLE plain (idx BIGINT PRIMARY KEY, entry_key TEXT NOT NULL UNIQUE, data BYTEA NOT NULL)", p).ExecuteNonQueryAsync();
        }
    }

    [GlobalCleanup]
    public async Task CleanUpAsync()
    {
        await _log.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, true);
    }

    /// <summary>4,000 concurrent callers each awaiting its own durable append (the writer group-commits them).</summary>
    [Benchmark(OperationsPerInvoke = Appends)]
    public Task GroupCommittedAppends()
    {
        var tasks = new Task[Appends];
        for (var i = 0; i < Appends; i++)
        {
            var n = Interlocked.Increment(ref _next);
            tasks[i] = _log.AppendAsync(new LineageEntry($"bench:{n}", "GrantIssued", Event(n)));
        }

        return Task.WhenAll(tasks);
    }

    /// <summary>Baseline: the same number of rows inserted in batches of 500 per transaction, no tree, no head lock.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Appends)]
    public async Task PlainBatchedInserts()
    {
        for (var b = 0; b < Appends / 500; b++)
        {
            var first = Interlocked.Add(ref _next, 500) - 499;
            if (Store == "sqlite")
            {
                await using var c = new SqliteConnection(_baselineConnection);
                c.Open();
                Exec(c, "PRAGMA synchronous=FULL;");
                await using var tx = c.BeginTransaction();
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO plain (idx, entry_key, data) VALUES ($i, $k, $d)";
                var pi = cmd.Parameters.Add("$i", SqliteType.Integer);
                var pk = cmd.Parameters.Add("$k", SqliteType.Text);
                var pd = cmd.Parameters.Add("$d", SqliteType.Blob);
                for (var n = first; n < first + 500; n++)
                {
                    pi.Value = n;
                    pk.Value = $"bench:{n}";
                    pd.Value = Event(n);
                    cmd.ExecuteNonQuery();
                }

                tx.Commit();
            }
            else
            {
                await using var c = new NpgsqlConnection(_baselineConnection);
                await c.OpenAsync();
                await using var cmd = new NpgsqlCommand("INSERT INTO plain (idx, entry_key, data) SELECT * FROM unnest(@i, @k, @d)", c);
                var ids = Enumerable.Range(0, 500).Select(x => first + x).ToArray();
                cmd.Parameters.AddWithValue("i", ids);
                cmd.Parameters.AddWithValue("k", ids.Select(n => $"bench:{n}").ToArray());
                cmd.Parameters.AddWithValue("d", ids.Select(Event).ToArray());
                await cmd.ExecuteNonQueryAsync();
            }
        }
    }

    internal static byte[] Event(long n) => Encoding.UTF8.GetBytes($"{{\"type\":\"GrantIssued\",\"event\":{{\"intentId\":\"{n:D12}\",\"decision\":\"allow\",\"padding\":\"0123456789abcdef0123456789abcdef\"}}}}");

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}

/// <summary>
/// Inclusion-proof generation from stored nodes in a SQLite log of 1,048,576 entries. Building the log takes minutes
/// on a loaded machine, longer than the in-process toolchain's default limit, hence its own job.
/// </summary>
[Config(typeof(LongSetupConfig))]
public class LedgerProofBenchmarks
{
    private const int Size = 1 << 20;
    private SqlLineageLog _log = null!;
    private string _dir = "";
    private long _i;

    [GlobalSetup]
    public async Task SetUpAsync()
    {
        _dir = Directory.CreateTempSubdirectory("meshbus-bench-proof-").FullName;
        _log = LineageLogs.OpenSqlite(Path.Combine(_dir, "lineage.db"));
        for (var start = 0; start < Size; start += 4096)
        {
            await _log.AppendBatchAsync(Enumerable.Range(start, 4096).Select(n => new LineageEntry($"p:{n}", "GrantIssued", LedgerAppendBenchmarks.Event(n))).ToList());
        }

        // Warm the cache of upper levels the way a long-running worker has it.
        for (var k = 0; k < 2000; k++)
        {
            await _log.GetInclusionProofAsync(k * 521 % Size, Size);
        }
    }

    [GlobalCleanup]
    public async Task CleanUpAsync()
    {
        await _log.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, true);
    }

    private sealed class LongSetupConfig : ManualConfig
    {
        public LongSetupConfig() =>
            AddJob(Job.ShortRun.WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(60), logOutput: true)));
    }

    /// <summary>One inclusion proof of a pseudo-random index in the 1M tree.</summary>
    [Benchmark]
    public Task<IReadOnlyList<byte[]>> InclusionProofAt1M() =>
        _log.GetInclusionProofAsync((Interlocked.Increment(ref _i) * 7919) % Size, Size);
}
