using System.Text.Json;
using MeshBus.Trust.Crypto;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>
/// Reads routing facts (kid, jti, iat, exp) out of a JWS without verifying it. Enforce is not a verifier: it only
/// indexes executions so scoped halts find them; the agent and the resources verify grants.
/// </summary>
internal static class JwsPeek
{
    public static string? HeaderKeyId(string? jws) => Part(jws, 0) is { } h && h.TryGetProperty("kid", out var kid) && kid.ValueKind == JsonValueKind.String ? kid.GetString() : null;

    public static (string? Jti, long? Iat, long? Exp) Claims(string? jws)
    {
        if (Part(jws, 1) is not { } p)
        {
            return (null, null, null);
        }

        return (
            p.TryGetProperty("jti", out var jti) && jti.ValueKind == JsonValueKind.String ? jti.GetString() : null,
            p.TryGetProperty("iat", out var iat) && iat.TryGetInt64(out var i) ? i : null,
            p.TryGetProperty("exp", out var exp) && exp.TryGetInt64(out var e) ? e : null);
    }

    /// <summary>The grant's <c>cnf.jwk.x</c> (the agent key it is bound to), when present.</summary>
    public static string? AgentKey(string? jws) =>
        Part(jws, 1) is { } p && p.TryGetProperty("cnf", out var cnf) && cnf.ValueKind == JsonValueKind.Object
            && cnf.TryGetProperty("jwk", out var jwk) && jwk.ValueKind == JsonValueKind.Object
            && jwk.TryGetProperty("x", out var x) && x.ValueKind == JsonValueKind.String
            ? x.GetString()
            : null;

    /// <summary>The epoch of <paramref name="domain"/>'s domain-scope policy the grant was decided under (its <c>policies</c> claim), when present.</summary>
    public static long? DomainPolicyEpoch(string? jws, string domain)
    {
        if (Part(jws, 1) is not { } p || !p.TryGetProperty("policies", out var policies) || policies.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        foreach (var policy in policies.EnumerateArray())
        {
            if (policy.ValueKind == JsonValueKind.Object
                && policy.TryGetProperty("domain", out var d) && d.ValueKind == JsonValueKind.String && d.GetString() == domain
                && policy.TryGetProperty("scope", out var s) && s.ValueKind == JsonValueKind.String && s.GetString() == "domain"
                && policy.TryGetProperty("epoch", out var e) && e.TryGetInt64(out var epoch))
            {
                return epoch;
            }
        }

        return null;
    }

    private static JsonElement? Part(string? jws, int index)
    {
        var parts = jws?.Split('.');
        if (parts is not { Length: 3 } || !Base64Url.TryDecode(parts[index], out var bytes))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
