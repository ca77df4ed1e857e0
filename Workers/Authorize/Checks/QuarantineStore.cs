using Microsoft.Data.Sqlite;
using Npgsql;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>
/// Which agents are quarantined, shared by every replica of the domain (a table in the domain's database): one
/// replica applies each <c>AgentQuarantined</c>/<c>AgentReleased</c> and every replica reads it on every decision.
/// </summary>
public interface IQuarantineState
{
    /// <summary>True when the agent subject is quarantined now.</summary>
    Task<bool> IsQuarantinedAsync(string agent, CancellationToken cancellationToken);

    /// <summary>
    /// Applies a quarantine that happened at <paramref name="at"/>; one not newer than the stored one is ignored (a
    /// redelivered quarantine is the same quarantine). <paramref name="quarantined"/> false is an unconditional lift
    /// (tests and tools only: the consumer lifts with <see cref="ReleaseAsync"/>).
    /// </summary>
    Task ApplyAsync(string agent, bool quarantined, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>
    /// Lifts the quarantine of <paramref name="agent"/> that started at <paramref name="quarantinedAt"/> (compared to
    /// the millisecond), only if it is the one in force; the stored time stays that quarantine's, so any later
    /// quarantine still applies. True when something was lifted.
    /// </summary>
    Task<bool> ReleaseAsync(string agent, DateTimeOffset quarantinedAt, CancellationToken cancellationToken);
}

/// <summary>The quarantine table on PostgreSQL (fleet).</summary>
public sealed class PostgresQuarantineState : IQuarantineState, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly Lazy<Task> _schema;

    /// <summary>Uses the database of <paramref name="connectionString"/>; the table is created when missing.</summary>
    public PostgresQuarantineState(string connectionString)
        : this(NpgsqlDataSource.Create(connectionString))
    {
        _ownsDataSource = true;
    }

    /// <summary>Uses <paramref name="dataSource"/>, shared with the worker's other tables (its owner disposes it).</summary>
    public PostgresQuarantineState(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _schema = new Lazy<Task>(async () =>
        {
            await using var cmd = _dataSource.CreateCommand(
                "CREATE TABLE IF NOT EXISTS authorize_quarantine (agent text PRIMARY KEY, quarantined boolean NOT NULL, changed_at timestamptz NOT NULL)");
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
    public async Task<bool> IsQuarantinedAsync(string agent, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var cmd = _dataSource.CreateCommand("SELECT quarantined FROM authorize_quarantine WHERE agent = @a");
        cmd.Parameters.AddWithValue("a", agent);
        return await cmd.ExecuteScalarAsync(cancellationToken) is true;
    }

    /// <inheritdoc />
    public async Task ApplyAsync(string agent, bool quarantined, DateTimeOffset at, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var cmd = _dataSource.CreateCommand(
            "INSERT INTO authorize_quarantine (agent, quarantined, changed_at) VALUES (@a, @q, @t) " +
            "ON CONFLICT (agent) DO UPDATE SET quarantined = excluded.quarantined, changed_at = excluded.changed_at " +
            "WHERE authorize_quarantine.changed_at < excluded.changed_at");
        cmd.Parameters.AddWithValue("a", agent);
        cmd.Parameters.AddWithValue("q", quarantined);
        cmd.Parameters.AddWithValue("t", at.UtcDateTime);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> ReleaseAsync(string agent, DateTimeOffset quarantinedAt, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var cmd = _dataSource.CreateCommand(
            "UPDATE authorize_quarantine SET quarantined = false WHERE agent = @a AND quarantined " +
            "AND date_trunc('milliseconds', changed_at) = date_trunc('milliseconds', @t)");
        cmd.Parameters.AddWithValue("a", agent);
        cmd.Parameters.AddWithValue("t", quarantinedAt.UtcDateTime);
        return await cmd.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _ownsDataSource ? _dataSource.DisposeAsync() : ValueTask.CompletedTask;
}

/// <summary>The quarantine table in an SQLite file (embedded; one process).</summary>
public sealed class SqliteQuarantineState : IQuarantineState
{
    private readonly string _connectionString;
    private readonly Lazy<Task> _schema;

    /// <summary>Uses (or creates) the SQLite file at <paramref name="path"/>.</summary>
    public SqliteQuarantineState(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
        _schema = new Lazy<Task>(() => ExecuteAsync(
            "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS authorize_quarantine (agent TEXT PRIMARY KEY, quarantined INTEGER NOT NULL, changed_at INTEGER NOT NULL)",
            _ => { },
            CancellationToken.None));
    }

    /// <inheritdoc />
    public async Task<bool> IsQuarantinedAsync(string agent, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var conn = new SqliteConnection(_connectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT quarantined FROM authorize_quarantine WHERE agent = $a";
        cmd.Parameters.AddWithValue("$a", agent);
        return await cmd.ExecuteScalarAsync(cancellationToken) is long q && q != 0;
    }

    /// <inheritdoc />
    public async Task ApplyAsync(string agent, bool quarantined, DateTimeOffset at, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await ExecuteAsync(
            "INSERT INTO authorize_quarantine (agent, quarantined, changed_at) VALUES ($a, $q, $t) " +
            "ON CONFLICT (agent) DO UPDATE SET quarantined = excluded.quarantined, changed_at = excluded.changed_at " +
            "WHERE authorize_quarantine.changed_at < excluded.changed_at",
            cmd =>
            {
                cmd.Parameters.AddWithValue("$a", agent);
                cmd.Parameters.AddWithValue("$q", quarantined ? 1 : 0);
                cmd.Parameters.AddWithValue("$t", at.ToUnixTimeMilliseconds());
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public async Task<bool> ReleaseAsync(string agent, DateTimeOffset quarantinedAt, CancellationToken cancellationToken)
    {
        await _schema.Value;
        await using var conn = new SqliteConnection(_connectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = "UPDATE authorize_quarantine SET quarantined = 0 WHERE agent = $a AND quarantined <> 0 AND changed_at = $t";
        cmd.Parameters.AddWithValue("$a", agent);
        cmd.Parameters.AddWithValue("$t", quarantinedAt.ToUnixTimeMilliseconds());
        return await cmd.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    private async Task ExecuteAsync(string sql, Action<SqliteCommand> bind, CancellationToken cancellationToken)
    {
        await using var conn = new SqliteConnection(_connectionString);
        await conn.OpenAsync(cancellationToken);
        await using var cmd = conn.CreateCommand();
        cmd.CommandText = sql;
        bind(cmd);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
