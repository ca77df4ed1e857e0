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

    /// <summary>Applies a quarantine or release that happened at <paramref name="at"/>; an older change than the stored one is ignored.</summary>
    Task ApplyAsync(string agent, bool quarantined, DateTimeOffset at, CancellationToken cancellationToken);
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
            "WHERE authorize_quarantine.changed_at <= excluded.changed_at");
        cmd.Parameters.AddWithValue("a", agent);
        cmd.Parameters.AddWithValue("q", quarantined);
        cmd.Parameters.AddWithValue("t", at.UtcDateTime);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
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
            "WHERE authorize_quarantine.changed_at <= excluded.changed_at",
            cmd =>
            {
                cmd.Parameters.AddWithValue("$a", agent);
                cmd.Parameters.AddWithValue("$q", quarantined ? 1 : 0);
                cmd.Parameters.AddWithValue("$t", at.ToUnixTimeMilliseconds());
            },
            cancellationToken);
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
