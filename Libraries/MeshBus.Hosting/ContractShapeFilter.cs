using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using MassTransit;

namespace MeshBus.Hosting;

/// <summary>
/// Rejects a MeshBus contract message whose required fields are absent, before any consumer sees it. JSON has no
/// "required": a publisher that leaves out <c>agent</c> would otherwise hand the consumer a record with a null in a
/// non-nullable field (fail-closed rule 7).
/// </summary>
internal sealed class ContractShapeFilter<T> : IFilter<ConsumeContext<T>>
    where T : class
{
    public Task Send(ConsumeContext<T> context, IPipe<ConsumeContext<T>> next)
    {
        if (ContractShape.IsContract(typeof(T)))
        {
            var problems = ContractShape.Problems(context.Message);
            if (problems.Count > 0)
            {
                throw new MalformedMessageException(typeof(T), problems);
            }
        }

        return next.Send(context);
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("meshbus-contract-shape");
}

/// <summary>Which fields of a contract record must be present: non-nullable references and non-nullable ids.</summary>
internal static class ContractShape
{
    private static readonly Assembly ContractsAssembly = typeof(Contracts.GovernanceReason).Assembly;
    private static readonly ConcurrentDictionary<Type, (PropertyInfo Property, string Name, bool IsId)[]> Required = new();
    private static readonly NullabilityInfoContext Nullability = new();
    private static readonly Lock NullabilityLock = new();

    public static bool IsContract(Type type) => type.Assembly == ContractsAssembly;

    public static List<string> Problems(object message)
    {
        var problems = new List<string>();
        Collect(message, "", problems, depth: 0);
        return problems;
    }

    private static void Collect(object message, string prefix, List<string> problems, int depth)
    {
        foreach (var (property, name, isId) in Required.GetOrAdd(message.GetType(), RequiredProperties))
        {
            var value = property.GetValue(message);
            if (value is null || (value is JsonElement { ValueKind: JsonValueKind.Undefined }))
            {
                problems.Add($"{prefix}{name} is missing");
            }
            else if (isId && value is Guid id && id == Guid.Empty)
            {
                problems.Add($"{prefix}{name} is missing or empty");
            }
            else if (depth < 4 && IsContract(value.GetType()) && !value.GetType().IsEnum)
            {
                Collect(value, prefix + name + ".", problems, depth + 1);
            }
        }
    }

    private static (PropertyInfo, string, bool)[] RequiredProperties(Type type)
    {
        var required = new List<(PropertyInfo, string, bool)>();
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetMethod is null || property.Name == "EqualityContract")
            {
                continue;
            }

            var name = JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            if (property.PropertyType == typeof(Guid))
            {
                // Optional ids are Guid?; a bare Guid is an identity and Guid.Empty means the field was absent.
                required.Add((property, name, true));
                continue;
            }

            if (property.PropertyType.IsValueType)
            {
                continue;
            }

            NullabilityState state;
            lock (NullabilityLock)
            {
                state = Nullability.Create(property).ReadState;
            }

            if (state == NullabilityState.NotNull)
            {
                required.Add((property, name, false));
            }
        }

        return [.. required];
    }
}
