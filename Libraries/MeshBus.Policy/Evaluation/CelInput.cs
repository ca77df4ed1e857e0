using System.Text.Json;
using MeshBus.Policy.Cel;

namespace MeshBus.Policy.Evaluation;

/// <summary>Converts a <see cref="PolicyInput"/> into CEL values shaped as <see cref="PolicyInputSchema"/> declares.</summary>
public static class CelInput
{
    private static readonly CelValue EmptyMap = CelValue.Map(new Dictionary<string, CelValue>());

    /// <summary>
    /// The activation a condition is evaluated against. Each variable is converted on first use and then reused by every
    /// rule of the decision, so a decision whose conditions never read <c>agent</c> never converts the claims.
    /// </summary>
    public static CelActivation ToActivation(PolicyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return CelActivation.Create(new LazyVariables(input));
    }

    /// <summary>The CEL variables of an input: <c>intent</c>, <c>agent</c>, <c>origin</c>, <c>target</c>, <c>now</c>.</summary>
    public static IReadOnlyDictionary<string, CelValue> ToValues(PolicyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new Dictionary<string, CelValue>(new LazyVariables(input), StringComparer.Ordinal);
    }

    private static CelValue Intent(PolicyIntent i) => Record(
        ("id", CelValue.Of(i.Id)),
        ("action", CelValue.Of(i.Action)),
        ("resource", CelValue.Of(i.Resource)),
        ("parameters", Parameters(i.Parameters)),
        ("maxDurationSeconds", CelValue.Of(i.MaxDurationSeconds)),
        ("targetDomain", CelValue.Of(i.TargetDomain)),
        ("issuedAt", CelValue.Of(i.IssuedAt)));

    private static CelValue Agent(PolicyAgent a) => Record(
        ("subject", CelValue.Of(a.Subject)),
        ("domain", CelValue.Of(a.Domain)),
        ("claims", JsonMap(a.Claims)));

    private static CelValue Origin(PolicyOrigin o) => Record(
        ("domain", CelValue.Of(o.Domain)),
        ("attributes", o.Attributes is null ? EmptyMap : JsonMap(o.Attributes)));

    internal static bool IsBooleanType(CelType type) => type.Equals(CelType.Bool) || type.Equals(CelType.Dyn);

    internal static bool TryGetBool(CelValue value, out bool b)
    {
        b = value is CelBool { Value: true };
        return value is CelBool;
    }

    private static CelValue Parameters(JsonElement? parameters) => parameters switch
    {
        null or { ValueKind: JsonValueKind.Undefined or JsonValueKind.Null } => EmptyMap,
        { ValueKind: JsonValueKind.Object } p => FromJson(p),
        // Not an object: any condition that reads the parameters fails (and denies) instead of seeing an empty map.
        _ => CelValue.Error("intent.parameters is not a JSON object"),
    };

    private static CelValue FromJson(JsonElement json)
    {
        try
        {
            return CelValue.FromJson(json);
        }
        catch (ArgumentException e)
        {
            return CelValue.Error("unusable input value: " + e.Message);
        }
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
            map[k] = FromJson(v);
        }

        return CelValue.Map(map);
    }

    /// <summary>The five input variables, each converted when a condition first reads it (one decision, one thread).</summary>
    private sealed class LazyVariables(PolicyInput input) : IReadOnlyDictionary<string, CelValue>
    {
        private static readonly string[] Names = ["intent", "agent", "origin", "target", "now"];
        private CelValue? _intent;
        private CelValue? _agent;
        private CelValue? _origin;
        private CelValue? _target;
        private CelValue? _now;

        public int Count => Names.Length;

        public IEnumerable<string> Keys => Names;

        public IEnumerable<CelValue> Values => Names.Select(n => this[n]);

        public CelValue this[string key] => TryGetValue(key, out var v) ? v : throw new KeyNotFoundException(key);

        public bool ContainsKey(string key) => Array.IndexOf(Names, key) >= 0;

        public bool TryGetValue(string key, out CelValue value)
        {
            CelValue? v = key switch
            {
                "intent" => _intent ??= Intent(input.Intent),
                "agent" => _agent ??= Agent(input.Agent),
                "origin" => _origin ??= Origin(input.Origin),
                "target" => _target ??= Record(("domain", CelValue.Of(input.Target.Domain))),
                "now" => _now ??= CelValue.Of(input.Now),
                _ => null,
            };
            value = v!;
            return v is not null;
        }

        public IEnumerator<KeyValuePair<string, CelValue>> GetEnumerator() =>
            Names.Select(n => new KeyValuePair<string, CelValue>(n, this[n])).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
