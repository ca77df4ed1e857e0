using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>Reads and writes JWT claims strictly: every required claim present with the right JSON type.</summary>
internal static class ClaimsJson
{
    public static string String(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s
            ? s
            : throw new ClaimException($"claim '{name}' must be a non-empty string");

    public static string? OptionalString(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ClaimException($"claim '{name}' must be a string");
    }

    public static long Integer(JsonElement o, string name) =>
        o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && Math.Abs(n) <= Canonical.MaxSafeInteger
            ? n
            : throw new ClaimException($"claim '{name}' must be an integer");

    public static long OptionalInteger(JsonElement o, string name, long defaultValue) =>
        o.TryGetProperty(name, out _) ? Integer(o, name) : defaultValue;

    public static DateTimeOffset Time(JsonElement o, string name)
    {
        var n = Integer(o, name);
        if (n < 0 || n > 253402300799)
        {
            throw new ClaimException($"claim '{name}' is not a valid NumericDate");
        }

        return DateTimeOffset.FromUnixTimeSeconds(n);
    }

    public static IReadOnlyList<string> StringArray(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (v.ValueKind != JsonValueKind.Array)
        {
            throw new ClaimException($"claim '{name}' must be an array of strings");
        }

        var list = new List<string>();
        foreach (var item in v.EnumerateArray())
        {
            list.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : throw new ClaimException($"claim '{name}' must be an array of strings"));
        }

        return list;
    }

    public static Guid Guid(JsonElement o, string name) =>
        System.Guid.TryParseExact(String(o, name), "D", out var g) ? g : throw new ClaimException($"claim '{name}' must be a lowercase UUID");

    public static long Seconds(DateTimeOffset t) => t.ToUnixTimeSeconds();

    /// <summary><c>cnf</c> per RFC 7800: <c>{"jwk": {"kty":"OKP","crv":"Ed25519","x": ...}}</c>.</summary>
    public static JsonObject Confirmation(string agentKey) => new()
    {
        ["jwk"] = new JsonObject { ["crv"] = "Ed25519", ["kty"] = "OKP", ["x"] = agentKey },
    };

    public static string ReadConfirmation(JsonElement o)
    {
        if (!o.TryGetProperty("cnf", out var cnf) || cnf.ValueKind != JsonValueKind.Object
            || !cnf.TryGetProperty("jwk", out var jwk) || jwk.ValueKind != JsonValueKind.Object)
        {
            throw new ClaimException("claim 'cnf' must hold a jwk");
        }

        if (String(jwk, "kty") != "OKP" || String(jwk, "crv") != "Ed25519")
        {
            throw new ClaimException("cnf key must be an OKP Ed25519 key");
        }

        var x = String(jwk, "x");
        if (!Base64Url.TryDecode(x, out var raw) || raw.Length != Ed25519Keys.KeySize)
        {
            throw new ClaimException("cnf key is not a 32-byte base64url Ed25519 key");
        }

        return x;
    }

    public static void CheckAgentKey(string agentKey, string what)
    {
        if (!Base64Url.TryDecode(agentKey, out var raw) || raw.Length != Ed25519Keys.KeySize)
        {
            throw new ArgumentException($"{what} is not a 32-byte base64url Ed25519 public key");
        }
    }
}

/// <summary>A claim is missing or has the wrong type.</summary>
internal sealed class ClaimException(string message) : FormatException(message);
