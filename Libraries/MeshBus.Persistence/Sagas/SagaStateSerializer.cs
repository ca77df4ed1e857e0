using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace MeshBus.Persistence;

/// <summary>Saga state as JSON: public read/write properties, camelCase; index keys are derived, never stored.</summary>
internal static class SagaStateSerializer
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { DropIndexKeys } },
    };

    public static string Serialize<TSaga>(TSaga saga) => JsonSerializer.Serialize(saga, Options);

    public static TSaga Deserialize<TSaga>(string json) =>
        JsonSerializer.Deserialize<TSaga>(json, Options) ?? throw new JsonException($"Stored state of {typeof(TSaga).Name} is null.");

    private static void DropIndexKeys(JsonTypeInfo typeInfo)
    {
        if (typeInfo.Kind != JsonTypeInfoKind.Object || !typeof(IIndexedSaga).IsAssignableFrom(typeInfo.Type))
        {
            return;
        }

        for (var i = typeInfo.Properties.Count - 1; i >= 0; i--)
        {
            if (typeInfo.Properties[i].Name.Equals(nameof(IIndexedSaga.IndexKeys), StringComparison.OrdinalIgnoreCase))
            {
                typeInfo.Properties.RemoveAt(i);
            }
        }
    }
}
