using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// Proof of possession for intents. The signed form of an <see cref="IntentSubmitted"/> is the RFC 8785 canonical
/// JSON of the object <c>{action, agent, domain, intentId, issuedAt, maxDurationSeconds, nonce, parameters, resource,
/// targetDomain}</c> (every field except <c>Signature</c>, <c>Credential</c> and <c>MessageVersion</c>), where
/// <c>intentId</c> is the lowercase hyphenated UUID, <c>issuedAt</c> is an integer of milliseconds since the Unix
/// epoch, and <c>parameters</c> is the JSON object (or <c>null</c>) whose numbers must be integers within ±2^53.
/// <see cref="IntentSubmitted.Signature"/> is the base64url Ed25519 signature of the agent key over those bytes.
/// See docs/trust.md.
/// </summary>
public static class IntentSignature
{
    /// <summary>The canonical signed bytes of an intent. Throws <see cref="StrictJsonException"/> for parameters outside the subset.</summary>
    public static byte[] SignedBytes(IntentSubmitted intent)
    {
        ArgumentNullException.ThrowIfNull(intent);
        JsonNode? parameters = null;
        if (intent.Parameters is { } p)
        {
            if (p.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
            {
                throw new StrictJsonException("intent parameters must be a JSON object");
            }

            // Canonicalize first: it refuses duplicate members and non-integer numbers before anything else reads them.
            parameters = p.ValueKind == JsonValueKind.Object ? JsonNode.Parse(Canonical.Json(p)) : null;
        }

        var o = new JsonObject
        {
            ["intentId"] = intent.IntentId.ToString("D"),
            ["domain"] = intent.Domain,
            ["agent"] = intent.Agent,
            ["targetDomain"] = intent.TargetDomain,
            ["action"] = intent.Action,
            ["resource"] = intent.Resource,
            ["parameters"] = parameters,
            ["maxDurationSeconds"] = intent.MaxDurationSeconds,
            ["nonce"] = intent.Nonce,
            ["issuedAt"] = intent.IssuedAt.ToUnixTimeMilliseconds(),
        };
        return Canonical.Json(JsonSerializer.SerializeToElement(o));
    }

    /// <summary><c>sha256:&lt;hex&gt;</c> of <see cref="SignedBytes"/>: the intent digest grants bind to.</summary>
    public static string Digest(IntentSubmitted intent) => Canonical.Sha256Digest(SignedBytes(intent));

    /// <summary>
    /// Signs an intent with the agent's private key. <see cref="IntentSubmitted.IssuedAt"/> is truncated to whole
    /// milliseconds (the signed precision) in the returned copy.
    /// </summary>
    public static IntentSubmitted Sign(IntentSubmitted unsigned, ReadOnlySpan<byte> agentPrivateKey)
    {
        ArgumentNullException.ThrowIfNull(unsigned);
        var issuedAt = DateTimeOffset.FromUnixTimeMilliseconds(unsigned.IssuedAt.ToUnixTimeMilliseconds());
        var intent = unsigned with { IssuedAt = issuedAt, Signature = "" };
        return intent with { Signature = Base64Url.Encode(Ed25519Keys.Sign(agentPrivateKey, SignedBytes(intent))) };
    }

    /// <summary>
    /// Verifies the intent's signature with the agent's public key (take it from the verified credential's
    /// <c>cnf</c>). False for a bad signature, an <c>IssuedAt</c> finer than milliseconds, or parameters outside the
    /// canonical subset.
    /// </summary>
    public static bool Verify(IntentSubmitted intent, ReadOnlySpan<byte> agentPublicKey) => VerifiedDigest(intent, agentPublicKey) is not null;

    /// <summary>
    /// <see cref="Verify"/> and <see cref="Digest"/> in one pass over the canonical bytes: the intent digest when the
    /// signature verifies, null when <see cref="Verify"/> would be false.
    /// </summary>
    public static string? VerifiedDigest(IntentSubmitted intent, ReadOnlySpan<byte> agentPublicKey)
    {
        ArgumentNullException.ThrowIfNull(intent);
        if (intent.IssuedAt.UtcTicks % TimeSpan.TicksPerMillisecond != 0 || !Base64Url.TryDecode(intent.Signature, out var signature))
        {
            return null;
        }

        byte[] bytes;
        try
        {
            bytes = SignedBytes(intent);
        }
        catch (FormatException)
        {
            return null;
        }

        return Ed25519Keys.Verify(agentPublicKey, bytes, signature) ? Canonical.Sha256Digest(bytes) : null;
    }
}
