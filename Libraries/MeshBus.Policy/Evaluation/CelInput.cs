using System.Text.Json;
using MeshBus.Policy.Cel;

namespace MeshBus.Policy.Evaluation;

/// <summary>Converts a <see cref="PolicyInput"/> into CEL values shaped as <see cref="PolicyInputSchema"/> declares.</summary>
public static class CelInput
{
    private static readonly CelValue EmptyMap = CelValue.Map(new Dictionary<string, CelValue>());

    /// <summary>The activation a condition is evaluated against.</summary>
    public static CelActivation ToActivation(PolicyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return CelActivation.Create(ToValues(input));
    }

    /// <summary>The CEL variables of an input: <c>intent</c>, <c>agent</c>, <c>origin</c>, <c>target</c>, <c>now</c>.</summary>
    public static IReadOnlyDictionary<string, CelValue> ToValues(PolicyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var i = input.Intent;
        return new Dictionary<string, CelValue>(StringComparer.Ordinal)
        {
            ["intent"] = Record(
                ("id", CelValue.Of(i.Id)),
                ("action", CelValue.Of(i.Action)),
                ("resource", CelValue.Of(i.Resource)),
                ("parameters", i.Parameters is { ValueKind: JsonValueKind.Object } p ? CelValue.FromJson(p) : EmptyMap),
                ("maxDurationSeconds", CelValue.Of(i.MaxDurationSeconds)),
                ("targetDomain", CelValue.Of(i.TargetDomain)),
                ("issuedAt", CelValue.Of(i.IssuedAt))),
            ["agent"] = Record(
                ("subject", CelValue.Of(input.Agent.Subject)),
                ("domain", CelValue.Of(input.Agent.Domain)),
                ("claims", JsonMap(input.Agent.Claims))),
            ["origin"] = Record(
                ("domain", CelValue.Of(input.Origin.Domain)),
                ("attributes", input.Origin.Attributes is null ? EmptyMap : JsonMap(input.Origin.Attributes))),
            ["target"] = Record(("domain", CelValue.Of(input.Target.Domain))),
            ["now"] = CelValue.Of(input.Now),
        };
    }

    internal static bool IsBooleanType(CelType type) => type.Equals(CelType.Bool) || type.Equals(CelType.Dyn);

    internal static bool TryGetBool(CelValue value, out bool b)
    {
        b = value is CelBool { Value: true };
        return value is CelBool;
    }

    private static CelValue Record(params (string Name, CelValue Value)[] fields)
    {
        var map = new Dictionary<string, CelValue>(fields.Length, StringComparer.Ordinal);
        foreach (var (name, value) in fields)
        {
            map[name] = value;
        }

        return CelValue.Map(map);
    }

    private static CelValue JsonMap(IReadOnlyDictionary<string, JsonElement> values)
    {
        var map = new Dictionary<string, CelValue>(values.Count, StringComparer.Ordinal);
        foreach (var (k, v) in values)
        {
            map[k] = CelValue.FromJson(v);
        }

        return CelValue.Map(map);
    }
}
