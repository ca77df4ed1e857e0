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

/// <summary>The nonce table in an SQLite file (embedded; one process).</summary>
public sealed class SqliteNonceStore : INonceStore
{
    private readonly string _connectionString;
    private readonly Lazy<Task> _schema;

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
        await _schema.Value;
        await using var conn = await OpenAsync(cancellationToken);
        await using var cmd = conn.CreateCommand();
        cmd.CommandText =
            "INSERT INTO authorize_nonces (agent, nonce, intent_id, keep_until) VALUES ($a, $n, $i, $k) " +
            "ON CONFLICT (agent, nonce) DO UPDATE SET agent = authorize_nonces.agent RETURNING intent_id";
        cmd.Parameters.AddWithValue("$a", agent);
        cmd.Parameters.AddWithValue("$n", nonce);
        cmd.Parameters.AddWithValue("$i", intentId.ToString("D"));
        cmd.Parameters.AddWithValue("$k", keepUntil.ToUnixTimeMilliseconds());
        return Guid.Parse((string)(await cmd.ExecuteScalarAsync(cancellationToken))!);
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
}
