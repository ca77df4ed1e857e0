using System.Text;
using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// JWS compact serialization (RFC 7515) restricted to what MeshBus signs: <c>alg: EdDSA</c> (RFC 8037) with a
/// <c>typ</c> and a <c>kid</c>, and nothing else in the protected header. Header and payload are RFC 8785 canonical
/// JSON, so the same claims always give the same bytes.
/// </summary>
public static class CompactJws
{
    /// <summary>The only accepted algorithm.</summary>
    public const string Algorithm = "EdDSA";

    /// <summary>The largest accepted token, in characters.</summary>
    public const int MaxLength = 16 * 1024;

    private static readonly HashSet<string> AllowedHeaders = new(StringComparer.Ordinal) { "alg", "typ", "kid" };

    /// <summary>Signs canonical <paramref name="payload"/> with header <c>{alg, kid, typ}</c>.</summary>
    public static string Sign(JsonElement payload, string type, ISigner signer)
    {
        ArgumentNullException.ThrowIfNull(signer);
        return Sign(payload, type, signer.KeyId, signer.Sign);
    }

    /// <summary>Signs with any Ed25519 signing function (for keys outside the key set, such as attesters).</summary>
    internal static string Sign(JsonElement payload, string type, string keyId, SignFunction sign)
    {
        var header = JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["alg"] = Algorithm, ["kid"] = keyId, ["typ"] = type });
        var signingInput = Base64Url.Encode(Canonical.Json(header)) + "." + Base64Url.Encode(Canonical.Json(payload));
        var signature = sign(Encoding.ASCII.GetBytes(signingInput));
        return signingInput + "." + Base64Url.Encode(signature);
    }

    /// <summary>An Ed25519 signing function.</summary>
    internal delegate byte[] SignFunction(ReadOnlySpan<byte> data);

    /// <summary>
    /// Splits and checks the structure and header of a token without verifying the signature: three strict base64url
    /// parts, header members only <c>alg</c> (EdDSA), <c>typ</c> (= <paramref name="expectedType"/>) and <c>kid</c>,
    /// no duplicate members in header or payload. The payload must be a JSON object.
    /// </summary>
    public static VerificationResult<ParsedJws> Parse(string? token, string expectedType)
    {
        if (string.IsNullOrEmpty(token))
        {
            return Fail("empty token");
        }

        if (token.Length > MaxLength)
        {
            return Fail($"token longer than {MaxLength} characters");
        }

        var parts = token.Split('.');
        if (parts.Length != 3)
        {
            return Fail("not a JWS compact serialization (expected three parts)");
        }

        if (!Base64Url.TryDecode(parts[0], out var headerBytes) || !Base64Url.TryDecode(parts[1], out var payloadBytes) || !Base64Url.TryDecode(parts[2], out var signature))
        {
            return Fail("a part is not canonical unpadded base64url");
        }

        JsonElement header, payload;
        try
        {
            header = StrictJson.Parse(headerBytes);
            payload = StrictJson.Parse(payloadBytes);
        }
        catch (StrictJsonException e)
        {
            return VerificationResult<ParsedJws>.Fail(GovernanceReason.MalformedInput, e.Message);
        }

        if (header.ValueKind != JsonValueKind.Object || payload.ValueKind != JsonValueKind.Object)
        {
            return VerificationResult<ParsedJws>.Fail(GovernanceReason.MalformedInput, "header and payload must be JSON objects");
        }

        foreach (var member in header.EnumerateObject())
        {
            if (!AllowedHeaders.Contains(member.Name))
            {
                // crit, jku, jwk, x5u, x5c, b64 ... would let the token pick its own key or change how it is processed.
                return Fail($"header parameter '{member.Name}' is not accepted");
            }
        }

        if (!header.TryGetProperty("alg", out var alg) || alg.ValueKind != JsonValueKind.String || alg.GetString() != Algorithm)
        {
            return Fail("alg must be EdDSA");
        }

        if (!header.TryGetProperty("typ", out var typ) || typ.ValueKind != JsonValueKind.String || typ.GetString() != expectedType)
        {
            return Fail($"typ must be {expectedType}");
        }

        if (!header.TryGetProperty("kid", out var kid) || kid.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(kid.GetString()))
        {
            return Fail("kid missing");
        }

        if (signature.Length != Ed25519Keys.SignatureSize)
        {
            return Fail("signature is not 64 bytes");
        }

        var signingInput = Encoding.ASCII.GetBytes(token[..(parts[0].Length + 1 + parts[1].Length)]);
        return VerificationResult<ParsedJws>.Ok(new ParsedJws(kid.GetString()!, typ.GetString()!, payload, signingInput, signature));
    }

    private static VerificationResult<ParsedJws> Fail(string detail) => VerificationResult<ParsedJws>.Fail(GovernanceReason.SignatureInvalid, detail);
}

/// <summary>A structurally valid JWS whose signature is not yet verified.</summary>
/// <param name="KeyId">The header <c>kid</c>.</param>
/// <param name="Type">The header <c>typ</c>.</param>
/// <param name="Payload">The payload object (not yet trusted).</param>
/// <param name="SigningInput">The ASCII bytes the signature covers.</param>
/// <param name="Signature">The 64-byte signature.</param>
public sealed record ParsedJws(string KeyId, string Type, JsonElement Payload, byte[] SigningInput, byte[] Signature)
{
    /// <summary>Verifies the signature with a public key.</summary>
    public bool VerifySignature(ReadOnlySpan<byte> publicKey) => Ed25519Keys.Verify(publicKey, SigningInput, Signature);
}
