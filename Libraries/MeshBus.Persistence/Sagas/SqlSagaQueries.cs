using System.Data.Common;
using MassTransit;

namespace MeshBus.Persistence;

/// <summary>Reads committed saga state and index rows of the saga types registered with <c>SqlRepository</c>.</summary>
internal sealed class SqlSagaQueries(IEnumerable<SqlSagaBinding> bindings) : ISagaIndex, ISagaStateReader, ISagaRetention
{
    private readonly SqlSagaBinding[] _bindings = bindings.ToArray();

    public async Task<IReadOnlyList<Guid>> FindAsync(string sagaType, string kind, string value, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentNullException.ThrowIfNull(value);
        var database = Find(_bindings, sagaType);
        await database.EnsureSchemaAsync(cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT correlation_id FROM {database.Options.SagaIndexTable} WHERE saga_type = @type AND kind = @kind AND value = @value";
        Add(command, "@type", sagaType);
        Add(command, "@kind", kind);
        Add(command, "@value", value);
        var ids = new List<Guid>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            ids.Add(database.ReadId(reader, 0));
        }

        return ids;
    }

    public async Task<TSaga?> LoadAsync<TSaga>(Guid correlationId, CancellationToken cancellationToken = default)
        where TSaga : class, ISaga, ISagaVersion
    {
        var database = Find(_bindings, SagaTypeName.Of<TSaga>());
        await database.EnsureSchemaAsync(cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT data, version FROM {database.Options.SagaTable} WHERE saga_type = @type AND correlation_id = @id";
        Add(command, "@type", SagaTypeName.Of<TSaga>());
        Add(command, "@id", database.Id(correlationId));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var saga = SagaStateSerializer.Deserialize<TSaga>(reader.GetString(0));
        saga.Version = reader.GetInt32(1);
        saga.CorrelationId = correlationId;
        return saga;
    }

    public async Task<IReadOnlyDictionary<string, long>> CountByStateAsync<TSaga>(string stateMember, CancellationToken cancellationToken = default)
        where TSaga : class, ISaga
    {
        CheckMember(stateMember);
        var database = Find(_bindings, SagaTypeName.Of<TSaga>());
        await database.EnsureSchemaAsync(cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        var state = database.IsSqlite ? $"json_extract(data, '$.{stateMember}')" : $"data->>'{stateMember}'";
        command.CommandText = $"SELECT {state}, count(*) FROM {database.Options.SagaTable} WHERE saga_type = @type GROUP BY 1";
        Add(command, "@type", SagaTypeName.Of<TSaga>());
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            counts[reader.IsDBNull(0) ? "" : reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    public async Task<int> DeleteFinishedAsync<TSaga>(string stateMember, IReadOnlyCollection<string> finalStates, DateTimeOffset updatedBefore, CancellationToken cancellationToken = default)
        where TSaga : class, ISaga
    {
        CheckMember(stateMember);
        ArgumentNullException.ThrowIfNull(finalStates);
        if (finalStates.Count == 0)
        {
            return 0;
        }

        var database = Find(_bindings, SagaTypeName.Of<TSaga>());
        await database.EnsureSchemaAsync(cancellationToken);
        var gate = database.WriteGate;
        if (gate is not null)
        {
            await gate.WaitAsync(cancellationToken);
        }

        try
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            var state = database.IsSqlite ? $"json_extract(data, '$.{stateMember}')" : $"data->>'{stateMember}'";
            var names = string.Join(", ", finalStates.Select((_, i) => $"@s{i}"));
            var finished = $"SELECT correlation_id FROM {database.Options.SagaTable} WHERE saga_type = @type AND {state} IN ({names}) AND updated_at < @before";
            await using (var index = connection.CreateCommand())
            {
                index.Transaction = transaction;
                index.CommandText = $"DELETE FROM {database.Options.SagaIndexTable} WHERE saga_type = @type AND correlation_id IN ({finished})";
                Bind(index, database, finalStates, updatedBefore);
                await index.ExecuteNonQueryAsync(cancellationToken);
            }

            int deleted;
            await using (var rows = connection.CreateCommand())
            {
                rows.Transaction = transaction;
                rows.CommandText = $"DELETE FROM {database.Options.SagaTable} WHERE saga_type = @type AND {state} IN ({names}) AND updated_at < @before";
                Bind(rows, database, finalStates, updatedBefore);
                deleted = await rows.ExecuteNonQueryAsync(cancellationToken);
            }

            await transaction.CommitAsync(cancellationToken);
            return deleted;
        }
        finally
        {
            gate?.Release();
        }

        static void Bind(DbCommand command, SqlDatabase database, IReadOnlyCollection<string> states, DateTimeOffset before)
        {
            Add(command, "@type", SagaTypeName.Of<TSaga>());
            // updated_at is written as an ISO 8601 UTC text in SQLite (sorting as text sorts by time), timestamptz in PostgreSQL.
            Add(command, "@before", database.IsSqlite ? before.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture) : before.ToUniversalTime());
            var i = 0;
            foreach (var s in states)
            {
                Add(command, $"@s{i++}", s);
            }
        }
    }

    private static void CheckMember(string stateMember)
    {
        if (string.IsNullOrEmpty(stateMember) || !stateMember.All(char.IsAsciiLetterOrDigit))
        {
            throw new ArgumentException($"'{stateMember}' is not a plain JSON member name", nameof(stateMember));
        }
    }

    internal static SqlDatabase Find(IEnumerable<SqlSagaBinding> bindings, string sagaType) =>
        bindings.LastOrDefault(b => b.SagaType == sagaType)?.Database
        ?? throw new ArgumentException($"Saga type '{sagaType}' is not stored by SqlRepository in this container.", nameof(sagaType));

    private static void Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }
}
