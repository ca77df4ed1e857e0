using System.Data.Common;
using MassTransit;
using Npgsql;
using NpgsqlTypes;

namespace MeshBus.Persistence;

/// <summary>
/// One message's unit of work on the saga tables: a connection and a transaction. State and index rows are written
/// inside it and become visible together at <see cref="CommitAsync"/>; disposing without commit rolls back.
/// </summary>
internal sealed class SqlSagaSession<TSaga> : IAsyncDisposable
    where TSaga : class, ISaga, ISagaVersion
{
    private static readonly string SagaType = SagaTypeName.Of<TSaga>();

    private readonly SqlDatabase _database;
    private readonly DbConnection _connection;
    private readonly DbTransaction _transaction;
    private readonly Dictionary<Guid, HashSet<(string Kind, string Value)>> _loadedKeys = [];

    private SqlSagaSession(SqlDatabase database, DbConnection connection, DbTransaction transaction)
    {
        _database = database;
        _connection = connection;
        _transaction = transaction;
    }

    private string State => _database.Options.SagaTable;

    private string Index => _database.Options.SagaIndexTable;

    public static async Task<SqlSagaSession<TSaga>> BeginAsync(SqlDatabase database, CancellationToken cancellationToken)
    {
        var connection = await database.OpenAsync(cancellationToken);
        try
        {
            // SQLite: BEGIN IMMEDIATE (the write lock up front, behind the in-process gate).
            // PostgreSQL: READ COMMITTED; the load takes the row lock with FOR UPDATE.
            var transaction = await connection.BeginTransactionAsync(cancellationToken);
            return new SqlSagaSession<TSaga>(database, connection, transaction);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public async Task<TSaga?> LoadAsync(Guid correlationId, CancellationToken cancellationToken)
    {
        var sql = $"SELECT data, version FROM {State} WHERE saga_type = @type AND correlation_id = @id"
            + (_database.IsSqlite ? "" : " FOR UPDATE");
        await using var command = Command(sql, ("@type", SagaType), ("@id", _database.Id(correlationId)));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var saga = SagaStateSerializer.Deserialize<TSaga>(reader.GetString(0));
        saga.Version = reader.GetInt32(1);
        saga.CorrelationId = correlationId;
        if (saga is IIndexedSaga indexed)
        {
            _loadedKeys[correlationId] = KeysOf(indexed);
        }

        return saga;
    }

    /// <summary>Inserts a new instance; <c>false</c> when one with the same id exists already (nothing written).</summary>
    public async Task<bool> TryInsertAsync(TSaga saga, CancellationToken cancellationToken)
    {
        saga.Version = 1;
        var sql = _database.IsSqlite
            ? $"INSERT OR IGNORE INTO {State} (saga_type, correlation_id, version, data, updated_at) VALUES (@type, @id, @version, @data, @now)"
            : $"INSERT INTO {State} (saga_type, correlation_id, version, data, updated_at) VALUES (@type, @id, @version, @data, @now) ON CONFLICT DO NOTHING";
        await using var command = Command(sql,
            ("@type", SagaType), ("@id", _database.Id(saga.CorrelationId)), ("@version", saga.Version),
            ("@data", SagaStateSerializer.Serialize(saga)), ("@now", Now()));
        if (await command.ExecuteNonQueryAsync(cancellationToken) != 1)
        {
            return false;
        }

        await WriteIndexAsync(saga, isNew: true, cancellationToken);
        return true;
    }

    /// <summary>Inserts a new instance; a concurrent insert of the same id is a <see cref="ConcurrencyException"/>.</summary>
    public async Task InsertAsync(TSaga saga, CancellationToken cancellationToken)
    {
        if (!await TryInsertAsync(saga, cancellationToken))
        {
            throw new ConcurrencyException($"{SagaType} {saga.CorrelationId} was created concurrently", typeof(TSaga), saga.CorrelationId);
        }
    }

    /// <summary>Writes the new state if the stored version is still the one loaded; otherwise <see cref="ConcurrencyException"/>.</summary>
    public async Task UpdateAsync(TSaga saga, CancellationToken cancellationToken)
    {
        var expected = saga.Version;
        saga.Version = expected + 1;
        await using var command = Command(
            $"UPDATE {State} SET data = @data, version = @version, updated_at = @now WHERE saga_type = @type AND correlation_id = @id AND version = @expected",
            ("@type", SagaType), ("@id", _database.Id(saga.CorrelationId)), ("@version", saga.Version), ("@expected", expected),
            ("@data", SagaStateSerializer.Serialize(saga)), ("@now", Now()));
        if (await command.ExecuteNonQueryAsync(cancellationToken) != 1)
        {
            saga.Version = expected;
            throw new ConcurrencyException(
                $"{SagaType} {saga.CorrelationId} is no longer at version {expected}: another message changed it first", typeof(TSaga), saga.CorrelationId);
        }

        await WriteIndexAsync(saga, isNew: false, cancellationToken);
    }

    public async Task DeleteAsync(TSaga saga, CancellationToken cancellationToken)
    {
        await using var command = Command(
            $"DELETE FROM {State} WHERE saga_type = @type AND correlation_id = @id AND version = @expected",
            ("@type", SagaType), ("@id", _database.Id(saga.CorrelationId)), ("@expected", saga.Version));
        if (await command.ExecuteNonQueryAsync(cancellationToken) != 1)
        {
            throw new ConcurrencyException(
                $"{SagaType} {saga.CorrelationId} is no longer at version {saga.Version}: another message changed it first", typeof(TSaga), saga.CorrelationId);
        }

        await DeleteIndexAsync(saga.CorrelationId, cancellationToken);
    }

    public Task CommitAsync(CancellationToken cancellationToken) => _transaction.CommitAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync();
        await _connection.DisposeAsync();
    }

    private async Task WriteIndexAsync(TSaga saga, bool isNew, CancellationToken cancellationToken)
    {
        if (saga is not IIndexedSaga indexed)
        {
            return;
        }

        var keys = KeysOf(indexed);
        if (!isNew)
        {
            if (_loadedKeys.TryGetValue(saga.CorrelationId, out var before) && before.SetEquals(keys))
            {
                return;
            }

            await DeleteIndexAsync(saga.CorrelationId, cancellationToken);
        }

        foreach (var (kind, value) in keys)
        {
            await using var command = Command(
                $"INSERT INTO {Index} (saga_type, kind, value, correlation_id) VALUES (@type, @kind, @value, @id)",
                ("@type", SagaType), ("@kind", kind), ("@value", value), ("@id", _database.Id(saga.CorrelationId)));
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        _loadedKeys[saga.CorrelationId] = keys;
    }

    private async Task DeleteIndexAsync(Guid correlationId, CancellationToken cancellationToken)
    {
        await using var command = Command(
            $"DELETE FROM {Index} WHERE saga_type = @type AND correlation_id = @id",
            ("@type", SagaType), ("@id", _database.Id(correlationId)));
        await command.ExecuteNonQueryAsync(cancellationToken);
        _loadedKeys.Remove(correlationId);
    }

    private static HashSet<(string Kind, string Value)> KeysOf(IIndexedSaga saga)
    {
        var keys = new HashSet<(string Kind, string Value)>();
        foreach (var (kind, value) in saga.IndexKeys ?? [])
        {
            if (string.IsNullOrEmpty(kind) || value is null)
            {
                throw new InvalidOperationException($"{SagaType} produced an index key with an empty kind or a null value.");
            }

            keys.Add((kind, value));
        }

        return keys;
    }

    private object Now() => _database.IsSqlite ? DateTimeOffset.UtcNow.ToString("O") : DateTimeOffset.UtcNow;

    private DbCommand Command(string sql, params (string Name, object Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.Transaction = _transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            if (parameter is NpgsqlParameter npgsql && name == "@data")
            {
                npgsql.NpgsqlDbType = NpgsqlDbType.Jsonb;
            }

            command.Parameters.Add(parameter);
        }

        return command;
    }
}
