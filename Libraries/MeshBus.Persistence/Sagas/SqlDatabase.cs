using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MeshBus.Persistence;

/// <summary>
/// One configured store: opens connections, creates the saga tables once per process and, for SQLite,
/// serializes writers.
/// </summary>
internal sealed class SqlDatabase
{
    private static readonly ConcurrentDictionary<string, Lazy<Task>> SchemaReady = new();
    private static readonly ConcurrentDictionary<string, SemaphoreSlim> SqliteWriteGates = new();

    public SqlDatabase(SqlStoreOptions options)
    {
        options.Validate();
        Options = options;
        if (IsSqlite)
        {
            var dataSource = new SqliteConnectionStringBuilder(options.ConnectionString).DataSource;
            var key = string.IsNullOrEmpty(dataSource) || dataSource == ":memory:" ? options.ConnectionString : Path.GetFullPath(dataSource);
            WriteGate = SqliteWriteGates.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        }
    }

    public SqlStoreOptions Options { get; }

    public bool IsSqlite => Options.Provider == StorageProvider.Sqlite;

    /// <summary>
    /// SQLite has one writer per file. Microsoft.Data.Sqlite waits for the write lock by retrying synchronously,
    /// which starves a small thread pool when many consumers race for it; an async gate per file keeps them in
    /// line instead. <c>null</c> for PostgreSQL, which locks rows.
    /// </summary>
    public SemaphoreSlim? WriteGate { get; }

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        DbConnection connection = IsSqlite ? new SqliteConnection(Options.ConnectionString) : new NpgsqlConnection(Options.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            if (IsSqlite)
            {
                await using var pragma = connection.CreateCommand();
                pragma.CommandText = "PRAGMA synchronous=FULL;";
                await pragma.ExecuteNonQueryAsync(cancellationToken);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public Task EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        var key = $"{Options.Provider}|{Options.ConnectionString}|{Options.SagaTable}|{Options.SagaIndexTable}";
        var ready = SchemaReady.GetOrAdd(key, _ => new Lazy<Task>(() => CreateSchemaAsync(CancellationToken.None)));
        if (ready.Value.IsFaulted || ready.Value.IsCanceled)
        {
            // A failed attempt (database not up yet) must not poison the process: the next caller tries again.
            SchemaReady.TryRemove(new KeyValuePair<string, Lazy<Task>>(key, ready));
        }

        return ready.Value.WaitAsync(cancellationToken);
    }

    private async Task CreateSchemaAsync(CancellationToken cancellationToken)
    {
        var state = Options.SagaTable;
        var index = Options.SagaIndexTable;
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        if (IsSqlite)
        {
            command.CommandText = $"""
                PRAGMA journal_mode=WAL;
                CREATE TABLE IF NOT EXISTS {state} (
                    saga_type TEXT NOT NULL, correlation_id TEXT NOT NULL, version INTEGER NOT NULL,
                    data TEXT NOT NULL, updated_at TEXT NOT NULL,
                    PRIMARY KEY (saga_type, correlation_id)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS {index} (
                    saga_type TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, correlation_id TEXT NOT NULL,
                    PRIMARY KEY (saga_type, kind, value, correlation_id)) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS {index}_by_saga ON {index} (saga_type, correlation_id);
                """;
            await command.ExecuteNonQueryAsync(cancellationToken);
            return;
        }

        // Replicas starting together would race on CREATE TABLE IF NOT EXISTS (it is not atomic in PostgreSQL):
        // an advisory lock inside the transaction makes them take turns.
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        command.Transaction = transaction;
        command.CommandText = $"""
            SELECT pg_advisory_xact_lock(hashtext('meshbus-saga-schema:{state}'));
            CREATE TABLE IF NOT EXISTS {state} (
                saga_type text NOT NULL, correlation_id uuid NOT NULL, version integer NOT NULL,
                data jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (saga_type, correlation_id));
            CREATE TABLE IF NOT EXISTS {index} (
                saga_type text NOT NULL, kind text NOT NULL, value text NOT NULL, correlation_id uuid NOT NULL,
                PRIMARY KEY (saga_type, kind, value, correlation_id));
            CREATE INDEX IF NOT EXISTS {index}_by_saga ON {index} (saga_type, correlation_id);
            """;
        await command.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>The correlation id as the column type expects it.</summary>
    public object Id(Guid id) => IsSqlite ? id.ToString("D") : id;

    public Guid ReadId(DbDataReader reader, int ordinal) => IsSqlite ? Guid.Parse(reader.GetString(ordinal)) : reader.GetGuid(ordinal);
}
