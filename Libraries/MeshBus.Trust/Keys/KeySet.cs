using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>One working key in a key set.</summary>
/// <param name="KeyId">The key id (<c>kid</c>).</param>
/// <param name="Usage">What it may sign.</param>
/// <param name="PublicKey">Raw Ed25519 public key, base64url.</param>
/// <param name="NotBefore">Start of validity.</param>
/// <param name="NotAfter">End of validity.</param>
public sealed record KeySetEntry(string KeyId, KeyUsage Usage, string PublicKey, DateTimeOffset NotBefore, DateTimeOffset NotAfter)
{
    /// <summary>The raw public key bytes.</summary>
    public byte[] PublicKeyBytes() => Base64Url.Decode(PublicKey);
}

/// <summary>
/// A domain's working keys, signed by its root key. JSON (see docs/trust.md):
/// <c>{domain, sequence, issuedAt, expiresAt, keys:[{kid, usage, publicKey, notBefore, notAfter}], revoked:[kid], signature}</c>;
/// times are RFC 3339 UTC with whole seconds; <c>signature</c> is the root key's base64url Ed25519 signature over
/// <c>"meshbus-keyset/v1\n"</c> followed by the RFC 8785 canonical JSON of the document without <c>signature</c>.
/// As an <see cref="IKeyResolver"/> it resolves keys of its own domain only.
/// </summary>
/// <param name="Domain">The domain.</param>
/// <param name="Sequence">Grows by at least one with every new key set.</param>
/// <param name="IssuedAt">When the root signed it.</param>
/// <param name="ExpiresAt">After this no key in it resolves (the domain must publish a fresh key set).</param>
/// <param name="Keys">The working keys, old and new during a rotation.</param>
/// <param name="Revoked">Revoked key ids; never resolve again.</param>
public sealed record KeySet(string Domain, long Sequence, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, IReadOnlyList<KeySetEntry> Keys, IReadOnlyList<string> Revoked) : IKeyResolver
{
    /// <summary>The domain-separation prefix of the root signature.</summary>
    public const string SignaturePrefix = "meshbus-keyset/v1\n";

    /// <summary>The largest accepted key set document, in bytes.</summary>
    public const int MaxDocumentBytes = 256 * 1024;

    /// <inheritdoc/>
    public KeyResolution Resolve(string domain, string keyId, KeyUsage usage, DateTimeOffset at)
    {
        if (!string.Equals(domain, Domain, StringComparison.Ordinal))
        {
            return KeyResolution.Fail(GovernanceReason.UnknownDomain, $"no key set for domain '{domain}'");
        }

        if (Revoked.Contains(keyId, StringComparer.Ordinal))
        {
            return KeyResolution.Fail(GovernanceReason.KeyRevoked, $"key '{keyId}' of {Domain} is revoked");
        }

        if (at > ExpiresAt)
        {
            return KeyResolution.Fail(GovernanceReason.SyncStale, $"key set {Sequence} of {Domain} expired at {ExpiresAt:O}");
        }

        var entry = Keys.FirstOrDefault(k => string.Equals(k.KeyId, keyId, StringComparison.Ordinal));
        if (entry is null)
        {
            return KeyResolution.Fail(GovernanceReason.SignatureInvalid, $"unknown key id '{keyId}' for {Domain}");
        }

        if (entry.Usage != usage)
        {
            return KeyResolution.Fail(GovernanceReason.SignatureInvalid, $"key '{keyId}' is a {entry.Usage.ToWire()} key, not a {usage.ToWire()} key");
        }

        if (at < entry.NotBefore || at > entry.NotAfter)
        {
            return KeyResolution.Fail(GovernanceReason.SignatureInvalid, $"key '{keyId}' is valid only from {entry.NotBefore:O} to {entry.NotAfter:O}");
        }

        return KeyResolution.Ok(entry.PublicKeyBytes());
    }

    /// <summary>The key to sign with now for a usage: the valid, unrevoked key with the latest not-before.</summary>
    public KeySetEntry? Current(KeyUsage usage, DateTimeOffset at) =>
        Keys.Where(k => k.Usage == usage && !Revoked.Contains(k.KeyId, StringComparer.Ordinal) && k.NotBefore <= at && at <= k.NotAfter)
            .OrderByDescending(k => k.NotBefore).ThenBy(k => k.KeyId, StringComparer.Ordinal).FirstOrDefault();

    /// <summary>The unsigned document as JSON.</summary>
    public JsonObject ToJson()
    {
        var keys = new JsonArray();
        foreach (var k in Keys)
        {
            keys.Add(new JsonObject
            {
                ["kid"] = k.KeyId,
                ["usage"] = k.Usage.ToWire(),
                ["publicKey"] = k.PublicKey,
                ["notBefore"] = FormatTime(k.NotBefore),
                ["notAfter"] = FormatTime(k.NotAfter),
            });
        }

        return new JsonObject
        {
            ["domain"] = Domain,
            ["sequence"] = Sequence,
            ["issuedAt"] = FormatTime(IssuedAt),
            ["expiresAt"] = FormatTime(ExpiresAt),
            ["keys"] = keys,
            ["revoked"] = new JsonArray(Revoked.Select(r => (JsonNode)JsonValue.Create(r)!).ToArray()),
        };
    }

    /// <summary>Signs the key set with the domain's root key; returns the signed JSON document (canonical, one line).</summary>
    public string Sign(RootKey root)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!string.Equals(root.Domain, Domain, StringComparison.Ordinal))
        {
            throw new ArgumentException($"the root key of {root.Domain} cannot sign the key set of {Domain}", nameof(root));
        }

        Validate();
        var doc = ToJson();
        doc["signature"] = Base64Url.Encode(root.Sign(SigningInput(JsonSerializer.SerializeToElement(doc))));
        return Encoding.UTF8.GetString(Canonical.Json(JsonSerializer.SerializeToElement(doc)));
    }

    /// <summary>
    /// Parses a signed key set and verifies the root signature with <paramref name="rootPublicKey"/>. Expiry and
    /// sequence are the caller's checks (see <see cref="TrustConfig"/>). Throws <see cref="KeySetException"/>.
    /// </summary>
    public static KeySet Verify(string signedJson, ReadOnlySpan<byte> rootPublicKey)
    {
        var (set, signature, signingInput) = ParseSigned(signedJson);
        if (!Ed25519Keys.Verify(rootPublicKey, signingInput, signature))
        {
            throw new KeySetException(GovernanceReason.SignatureInvalid, $"key set {set.Sequence} of {set.Domain} is not signed by the pinned root key");
        }

        return set;
    }

    /// <summary>Reads the domain of a signed key set without verifying it (to find which root to verify with).</summary>
    public static string PeekDomain(string signedJson) => ParseSigned(signedJson).Set.Domain;

    private static (KeySet Set, byte[] Signature, byte[] SigningInput) ParseSigned(string signedJson)
    {
        ArgumentNullException.ThrowIfNull(signedJson);
        if (Encoding.UTF8.GetByteCount(signedJson) > MaxDocumentBytes)
        {
            throw new KeySetException(GovernanceReason.MalformedInput, "key set document too large");
        }

        try
        {
            var root = StrictJson.Parse(signedJson);
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new KeySetException(GovernanceReason.MalformedInput, "a key set is a JSON object");
            }

            var allowed = new HashSet<string>(StringComparer.Ordinal) { "domain", "sequence", "issuedAt", "expiresAt", "keys", "revoked", "signature" };
            foreach (var p in root.EnumerateObject())
            {
                if (!allowed.Contains(p.Name))
                {
                    throw new KeySetException(GovernanceReason.MalformedInput, $"unknown key set member '{p.Name}'");
                }
            }

            var signature = Base64Url.Decode(ClaimsJson.String(root, "signature"));
            var keys = new List<KeySetEntry>();
            if (!root.TryGetProperty("keys", out var ks) || ks.ValueKind != JsonValueKind.Array)
            {
                throw new ClaimException("'keys' must be an array");
            }

            foreach (var k in ks.EnumerateArray())
            {
                if (k.ValueKind != JsonValueKind.Object)
                {
                    throw new ClaimException("'keys' must hold objects");
                }

                var pub = ClaimsJson.String(k, "publicKey");
                if (Base64Url.Decode(pub).Length != Ed25519Keys.KeySize)
                {
                    throw new ClaimException("a publicKey is not 32 bytes");
                }

                keys.Add(new KeySetEntry(ClaimsJson.String(k, "kid"), KeyUsages.Parse(ClaimsJson.String(k, "usage")), pub, ParseTime(ClaimsJson.String(k, "notBefore")), ParseTime(ClaimsJson.String(k, "notAfter"))));
            }

            var set = new KeySet(
                ClaimsJson.String(root, "domain"),
                ClaimsJson.Integer(root, "sequence"),
                ParseTime(ClaimsJson.String(root, "issuedAt")),
                ParseTime(ClaimsJson.String(root, "expiresAt")),
                keys,
                ClaimsJson.StringArray(root, "revoked"));
            set.Validate();
            return (set, signature, SigningInput(root));
        }
        catch (KeySetException)
        {
            throw;
        }
        catch (FormatException e)
        {
            throw new KeySetException(GovernanceReason.MalformedInput, "malformed key set: " + e.Message);
        }
    }

    private void Validate()
    {
        if (Sequence < 1)
        {
            throw new KeySetException(GovernanceReason.MalformedInput, "key set sequence must be ≥ 1");
        }

        if (Keys.Select(k => k.KeyId).Distinct(StringComparer.Ordinal).Count() != Keys.Count)
        {
            throw new KeySetException(GovernanceReason.MalformedInput, "duplicate key id in key set");
        }
    }

    private static byte[] SigningInput(JsonElement document)
    {
        var withoutSignature = new JsonObject();
        foreach (var p in document.EnumerateObject())
        {
            if (p.Name != "signature")
            {
                withoutSignature[p.Name] = JsonNode.Parse(p.Value.GetRawText());
            }
        }

        var body = Canonical.Json(JsonSerializer.SerializeToElement(withoutSignature));
        return [.. Encoding.UTF8.GetBytes(SignaturePrefix), .. body];
    }

    /// <summary>RFC 3339 UTC, whole seconds: <c>2026-01-02T03:04:05Z</c>.</summary>
    public static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Parses <see cref="FormatTime"/> exactly.</summary>
    public static DateTimeOffset ParseTime(string s) =>
        DateTimeOffset.TryParseExact(s, "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t
            : throw new FormatException($"'{s}' is not an RFC 3339 UTC time like 2026-01-02T03:04:05Z");
}

/// <summary>A key set that cannot be accepted, with the reason.</summary>
public sealed class KeySetException(GovernanceReason reason, string message) : FormatException(message)
{
    /// <summary>Why it was refused.</summary>
    public GovernanceReason Reason { get; } = reason;
}
