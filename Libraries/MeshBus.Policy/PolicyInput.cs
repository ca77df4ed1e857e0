using System.Globalization;
using System.Text.Json;
using MeshBus.Contracts;

namespace MeshBus.Policy;

/// <summary>
/// What a condition sees (docs/policy.md, "Input schema"): the CEL variables <c>intent</c>, <c>agent</c>, <c>origin</c>,
/// <c>target</c> and <c>now</c>. Built by the Authorize worker from a verified intent and credential, never from
/// unverified data.
/// </summary>
/// <param name="Intent">The intent being decided.</param>
/// <param name="Agent">The agent that signed it, with the attested claims of its credential.</param>
/// <param name="Origin">The agent's home domain.</param>
/// <param name="Target">The domain that owns the resource.</param>
/// <param name="Now">The decider's clock at decision time.</param>
public sealed record PolicyInput(PolicyIntent Intent, PolicyAgent Agent, PolicyOrigin Origin, PolicyTarget Target, DateTimeOffset Now)
{
    /// <summary>
    /// The input for an intent: <paramref name="claims"/> are the verified credential's attested claims (image digest,
    /// runtime, owner, groups, ...), <paramref name="originAttributes"/> what the decider knows about the origin domain.
    /// </summary>
    public static PolicyInput For(
        IntentSubmitted intent,
        IReadOnlyDictionary<string, JsonElement> claims,
        DateTimeOffset now,
        IReadOnlyDictionary<string, JsonElement>? originAttributes = null)
    {
        ArgumentNullException.ThrowIfNull(intent);
        ArgumentNullException.ThrowIfNull(claims);
        return new PolicyInput(
            new PolicyIntent(
                intent.IntentId.ToString(),
                intent.Action,
                intent.Resource,
                intent.Parameters,
                intent.MaxDurationSeconds,
                intent.TargetDomain,
                intent.IssuedAt),
            new PolicyAgent(intent.Agent, intent.Domain, claims),
            new PolicyOrigin(intent.Domain, originAttributes),
            new PolicyTarget(intent.TargetDomain),
            now);
    }

    /// <summary>
    /// Reads an input from the JSON of a policy test case (docs/policy.md, "Test files"). Unknown members are errors;
    /// omitted members take the documented defaults. Throws <see cref="FormatException"/> naming the member.
    /// </summary>
    public static PolicyInput FromJson(JsonElement json)
    {
        Expect(json, JsonValueKind.Object, "input");
        Members(json, "input", "intent", "agent", "origin", "target", "now");
        var now = Timestamp(Required(json, "input", "now"), "input.now");

        var i = Required(json, "input", "intent");
        Expect(i, JsonValueKind.Object, "input.intent");
        Members(i, "input.intent", "id", "action", "resource", "parameters", "maxDurationSeconds", "targetDomain", "issuedAt");
        var a = Required(json, "input", "agent");
        Expect(a, JsonValueKind.Object, "input.agent");
        Members(a, "input.agent", "subject", "domain", "claims");

        string? targetDomain = Optional(i, "targetDomain") is { } td ? Str(td, "input.intent.targetDomain") : null;
        if (Optional(json, "target") is { } t)
        {
            Expect(t, JsonValueKind.Object, "input.target");
            Members(t, "input.target", "domain");
            var d = Str(Required(t, "input.target", "domain"), "input.target.domain");
            targetDomain ??= d;
            if (d != targetDomain)
            {
                throw new FormatException("input.target.domain differs from input.intent.targetDomain");
            }
        }

        if (targetDomain is null)
        {
            throw new FormatException("input: give input.target.domain or input.intent.targetDomain");
        }

        var agentDomain = Str(Required(a, "input.agent", "domain"), "input.agent.domain");
        var originDomain = agentDomain;
        IReadOnlyDictionary<string, JsonElement>? originAttributes = null;
        if (Optional(json, "origin") is { } o)
        {
            Expect(o, JsonValueKind.Object, "input.origin");
            Members(o, "input.origin", "domain", "attributes");
            originDomain = Str(Required(o, "input.origin", "domain"), "input.origin.domain");
            if (Optional(o, "attributes") is { } attrs)
            {
                originAttributes = ObjectMap(attrs, "input.origin.attributes");
            }
        }

        JsonElement? parameters = null;
        if (Optional(i, "parameters") is { } p)
        {
            Expect(p, JsonValueKind.Object, "input.intent.parameters");
            parameters = p.Clone();
        }

        long maxDuration = 300;
        if (Optional(i, "maxDurationSeconds") is { } md)
        {
            if (md.ValueKind != JsonValueKind.Number || !md.TryGetInt64(out maxDuration))
            {
                throw new FormatException("input.intent.maxDurationSeconds must be an integer");
            }
        }

        var intent = new PolicyIntent(
            Optional(i, "id") is { } id ? Str(id, "input.intent.id") : "00000000-0000-0000-0000-000000000000",
            Str(Required(i, "input.intent", "action"), "input.intent.action"),
            Str(Required(i, "input.intent", "resource"), "input.intent.resource"),
            parameters,
            maxDuration,
            targetDomain,
            Optional(i, "issuedAt") is { } ia ? Timestamp(ia, "input.intent.issuedAt") : now);
        var claims = Optional(a, "claims") is { } c ? ObjectMap(c, "input.agent.claims") : new Dictionary<string, JsonElement>();
        var agent = new PolicyAgent(Str(Required(a, "input.agent", "subject"), "input.agent.subject"), agentDomain, claims);
        return new PolicyInput(intent, agent, new PolicyOrigin(originDomain, originAttributes), new PolicyTarget(targetDomain), now);
    }

    private static Dictionary<string, JsonElement> ObjectMap(JsonElement e, string path)
    {
        Expect(e, JsonValueKind.Object, path);
        var map = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            if (!map.TryAdd(p.Name, p.Value.Clone()))
            {
                throw new FormatException($"{path}: member '{p.Name}' appears more than once");
            }
        }

        return map;
    }

    private static JsonElement Required(JsonElement obj, string path, string name) =>
        obj.TryGetProperty(name, out var v) ? v : throw new FormatException($"{path}: missing required member '{name}'");

    private static JsonElement? Optional(JsonElement obj, string name) => obj.TryGetProperty(name, out var v) ? v : null;

    private static void Expect(JsonElement e, JsonValueKind kind, string path)
    {
        if (e.ValueKind != kind)
        {
            throw new FormatException($"{path} must be a JSON {kind.ToString().ToLowerInvariant()}");
        }
    }

    private static void Members(JsonElement obj, string path, params string[] allowed)
    {
        foreach (var p in obj.EnumerateObject())
        {
            if (Array.IndexOf(allowed, p.Name) < 0)
            {
                throw new FormatException($"{path}: unknown member '{p.Name}' (allowed: {string.Join(", ", allowed)})");
            }
        }
    }

    private static string Str(JsonElement e, string path)
    {
        Expect(e, JsonValueKind.String, path);
        return e.GetString()!;
    }

    private static DateTimeOffset Timestamp(JsonElement e, string path)
    {
        var s = Str(e, path);
        return DateTimeOffset.TryParseExact(s, ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out var t)
            ? t
            : throw new FormatException($"{path}: '{s}' is not an RFC 3339 timestamp like 2026-01-02T03:04:05Z");
    }
}

/// <summary>The CEL variable <c>intent</c>.</summary>
/// <param name="Id">The intent id.</param>
/// <param name="Action">The action, e.g. <c>deploy</c>.</param>
/// <param name="Resource">The resource, e.g. <c>k8s://prod/web</c>.</param>
/// <param name="Parameters">The intent parameters (a JSON object; null for none, seen by CEL as an empty map).</param>
/// <param name="MaxDurationSeconds">The longest the agent says it will run.</param>
/// <param name="TargetDomain">The domain that owns the resource.</param>
/// <param name="IssuedAt">When the agent signed the intent.</param>
public sealed record PolicyIntent(
    string Id,
    string Action,
    string Resource,
    JsonElement? Parameters,
    long MaxDurationSeconds,
    string TargetDomain,
    DateTimeOffset IssuedAt);

/// <summary>The CEL variable <c>agent</c>.</summary>
/// <param name="Subject">The agent subject, e.g. <c>acme.example/prod/agents/deployer</c>.</param>
/// <param name="Domain">The agent's home domain.</param>
/// <param name="Claims">The attested claims of its credential (e.g. <c>image_digest</c>, <c>owner</c>, <c>groups</c>).</param>
public sealed record PolicyAgent(string Subject, string Domain, IReadOnlyDictionary<string, JsonElement> Claims);

/// <summary>The CEL variable <c>origin</c>: the domain the intent comes from.</summary>
/// <param name="Domain">Its name.</param>
/// <param name="Attributes">What the decider knows about it (null for none, seen by CEL as an empty map).</param>
public sealed record PolicyOrigin(string Domain, IReadOnlyDictionary<string, JsonElement>? Attributes = null);

/// <summary>The CEL variable <c>target</c>: the domain that owns the resource.</summary>
/// <param name="Domain">Its name.</param>
public sealed record PolicyTarget(string Domain);
