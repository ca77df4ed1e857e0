using System.Data.Common;
using MassTransit;

namespace MeshBus.Persistence;

/// <summary>Reads committed saga state and index rows of the saga types registered with <c>SqlRepository</c>.</summary>
internal sealed class SqlSagaQueries(IEnumerable<SqlSagaBinding> bindings) : ISagaIndex, ISagaStateReader
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
        if (string.IsNullOrEmpty(stateMember) || !stateMember.All(char.IsAsciiLetterOrDigit))
        {
            throw new ArgumentException($"'{stateMember}' is not a plain JSON member name", nameof(stateMember));
        }

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
