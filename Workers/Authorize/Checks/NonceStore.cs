using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>
/// Which intent first used each agent nonce, shared by every replica of the domain (a table in the domain's database).
/// An intent id replay is caught by its decision record; this catches the other half of DESIGN.md §3's replay rule: a
/// nonce the agent already spent on another intent id. Claimed only after the intent's signature verified, so nobody
/// but the agent can spend its nonces. Kept while an intent carrying the nonce could still be accepted
/// (<see cref="AuthorizeOptions.MaxIntentAgeSeconds"/> + <see cref="AuthorizeOptions.ClockSkewSeconds"/>).
/// </summary>
public interface INonceStore
{
    /// <summary>
    /// Claims <paramref name="nonce"/> of <paramref name="agent"/> for <paramref name="intentId"/> until
    /// <paramref name="keepUntil"/>; returns the intent id holding it (the given one when it was free or already its own).
    /// </summary>
    Task<Guid> ClaimAsync(string agent, string nonce, Guid intentId, DateTimeOffset keepUntil, CancellationToken cancellationToken);

    /// <summary>Forgets nonces whose keep-until passed before <paramref name="now"/>; returns how many.</summary>
    Task<int> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>The nonce table on PostgreSQL (fleet): one statement per claim, atomic across replicas.</summary>
public sealed class PostgresNonceStore : INonceStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly Lazy<Task> _schema;

    /// <summary>Uses the database of <paramref name="connectionString"/>; the table is created when missing.</summary>
    public PostgresNonceStore(string connectionString)
        : this(NpgsqlDataSource.Create(connectionString))
    {
        _ownsDataSource = true;
    }

    /// <summary>Uses <paramref name="dataSource"/>, shared with the worker's other tables (its owner disposes it).</summary>
    public PostgresNonceStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _schema = new Lazy<Task>(async () =>
        {
            await using var cmd = _dataSource.CreateCommand(
                "CREATE TABLE IF NOT EXISTS authorize_nonces (agent text NOT NULL, nonce text NOT NULL, intent_id uuid NOT NULL, " +
                "keep_until timestamptz NOT NULL, PRIMARY KEY (agent, nonce)); " +
                "CREATE INDEX IF NOT EXISTS authorize_nonces_keep_until ON authorize_nonces (keep_until)");
            try
            {
                await cmd.ExecuteNonQueryAsync();
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateTable)
            {
                // Two replicas created it at once.
            }
        });
    }

    /// <inheritdoc />
    public async Task<Guid> ClaimAsync(string agent, string nonce, Guid intentId, DateTimeOffset keepUntil, CancellationToken cancellationToken)
    {
        await _schema.Value;
        // The no-op update makes RETURNING yield the row that won, whether it was inserted now or before.
        await using var cmd = _dataSource.CreateCommand(
            "INSERT INTO authorize_nonces (agent, nonce, intent_id, keep_until) VALUES (@a, @n, @i, @k) " +
            "ON CONFLICT (agent, nonce) DO UPDATE SET agent = authorize_nonces.agent RETURNING intent_id");
        cmd.Parameters.AddWithValue("a", agent);
        cmd.Parameters.AddWithValue("n", nonce);
        cmd.Parameters.AddWithValue("i", intentId);
        cmd.Parameters.AddWithValue("k", keepUntil.UtcDateTime);
        return (Guid)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <inheritdoc />
    public async Task<int> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var cmd = _dataSource.CreateCommand("DELETE FROM authorize_nonces WHERE keep_until < @now");
        cmd.Parameters.AddWithValue("now", now.UtcDateTime);
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _ownsDataSource ? _dataSource.DisposeAsync() : ValueTask.CompletedTask;
}

/// <summary>
/// The nonce table in an SQLite file (embedded; one process). Claims are group-committed: whatever is queued when the
/// writer runs is inserted in one <c>BEGIN IMMEDIATE</c> transaction (in arrival order, so the first claim of a nonce
/// still wins) and each caller is answered only after that commit. One claim per transaction made every decision wait
/// for its own fsync behind the others' on the file's single write lock, each blocking a thread meanwhile.
/// </summary>
public sealed class SqliteNonceStore : INonceStore
{
    private const int MaxBatch = 256;
    private readonly string _connectionString;
    private readonly Lazy<Task> _schema;
    private readonly ConcurrentQueue<PendingClaim> _queue = new();
    private int _writing;

    /// <summary>Uses (or creates) the SQLite file at <paramref name="path"/>.</summary>
    public SqliteNonceStore(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 10 }.ToString();
        _schema = new Lazy<Task>(async () =>
        {
            await using var conn = await OpenAsync(CancellationToken.None);
            await using var cmd = conn.CreateCommand();
            cmd.CommandText =
                "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS authorize_nonces (agent TEXT NOT NULL, nonce TEXT NOT NULL, " +
                "intent_id TEXT NOT NULL, keep_until INTEGER NOT NULL, PRIMARY KEY (agent, nonce)); " +
                "CREATE INDEX IF NOT EXISTS authorize_nonces_keep_until ON authorize_nonces (keep_until)";
            await cmd.ExecuteNonQueryAsync();
        });
    }

    /// <inheritdoc />
    public async Task<Guid> ClaimAsync(string agent, string nonce, Guid intentId, DateTimeOffset keepUntil, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        await _schema.Value;
        var claim = new PendingClaim(agent, nonce, intentId, keepUntil);
        _queue.Enqueue(claim);
        if (Interlocked.CompareExchange(ref _writing, 1, 0) == 0)
        {
            _ = Task.Run(Drain, CancellationToken.None);
        }

        // A cancelled wait does not un-claim: the claim may still commit, and it names this intent id, so its
        // redelivery finds its own claim.
        return await claim.Holder.Task.WaitAsync(cancellationToken);
    }

    private void Drain()
    {
        var batch = new List<PendingClaim>(MaxBatch);
        while (true)
        {
            while (batch.Count < MaxBatch && _queue.TryDequeue(out var next))
            {
                batch.Add(next);
            }

            if (batch.Count > 0)
            {
                Commit(batch);
                batch.Clear();
                continue;
            }

            // Nothing queued: stop, unless a claim arrived between the last dequeue and the release of the writer role.
            Volatile.Write(ref _writing, 0);
            if (_queue.IsEmpty || Interlocked.CompareExchange(ref _writing, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private void Commit(List<PendingClaim> batch)
    {
        var holders = new Guid[batch.Count];
        try
        {
            // Microsoft.Data.Sqlite's async calls run synchronously anyway; this is the one writer thread.
            using var conn = new SqliteConnection(_connectionString);
            conn.Open();
            using var tx = conn.BeginTransaction(deferred: false);
            using var cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText =
                "INSERT INTO authorize_nonces (agent, nonce, intent_id, keep_until) VALUES ($a, $n, $i, $k) " +
                "ON CONFLICT (agent, nonce) DO UPDATE SET agent = authorize_nonces.agent RETURNING intent_id";
            var a = cmd.Parameters.Add("$a", SqliteType.Text);
            var n = cmd.Parameters.Add("$n", SqliteType.Text);
            var i = cmd.Parameters.Add("$i", SqliteType.Text);
            var k = cmd.Parameters.Add("$k", SqliteType.Integer);
            for (var j = 0; j < batch.Count; j++)
            {
                var c = batch[j];
                a.Value = c.Agent;
                n.Value = c.Nonce;
                i.Value = c.IntentId.ToString("D");
                k.Value = c.KeepUntil.ToUnixTimeMilliseconds();
                holders[j] = Guid.Parse((string)cmd.ExecuteScalar()!);
            }

            tx.Commit();
        }
        catch (Exception e)
        {
            // Nothing of the batch is known to be committed: every claim fails (the decision then fails closed).
            foreach (var c in batch)
            {
                c.Holder.TrySetException(e);
            }

            return;
        }

        for (var j = 0; j < batch.Count; j++)
        {
            batch[j].Holder.TrySetResult(holders[j]);
        }
    }

    /// <inheritdoc />
    public async Task<int> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var conn = await OpenAsync(cancellationToken);
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "DELETE FROM authorize_nonces WHERE keep_until < $now";
        cmd.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var conn = new SqliteConnection(_connectionString);
        await conn.OpenAsync(cancellationToken);
        return conn;
    }

    private sealed record PendingClaim(string Agent, string Nonce, Guid IntentId, DateTimeOffset KeepUntil)
    {
        public TaskCompletionSource<Guid> Holder { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
