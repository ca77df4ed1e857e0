using System.Text;
using System.Text.Json;
using MeshBus.Trust.Crypto;

namespace MeshBus.Policy.Bundles;

/// <summary>
/// Who must have signed a bundle. Domain and egress bundles need a valid signature by a grant key of the publishing
/// domain (<see cref="DomainGrantKeys"/>); a federation bundle needs one by every member's root (<see cref="EveryKey"/>).
/// </summary>
public sealed class PolicySigners
{
    private readonly Func<string, byte[]?>? _resolve;
    private readonly IReadOnlyDictionary<string, byte[]>? _required;

    private PolicySigners(Func<string, byte[]?>? resolve, IReadOnlyDictionary<string, byte[]>? required)
    {
        _resolve = resolve;
        _required = required;
    }

    /// <summary>
    /// At least one signature by a key that <paramref name="resolveKey"/> knows (key id → raw Ed25519 public key, null when
    /// unknown). Signatures by unknown key ids are ignored; a signature by a known key that does not verify refuses the bundle.
    /// </summary>
    public static PolicySigners AnyKnownKey(Func<string, byte[]?> resolveKey)
    {
        ArgumentNullException.ThrowIfNull(resolveKey);
        return new PolicySigners(resolveKey, null);
    }

    /// <summary>
    /// A domain or egress bundle's signers: the <b>grant</b> keys of <paramref name="domain"/>, valid at
    /// <paramref name="at"/> (the rule: the key that signs what the domain allows also signs the policy that decides it;
    /// <c>meshbus policy sign</c> uses it). A credential, envelope, log or witness key of the domain never verifies a bundle.
    /// </summary>
    public static PolicySigners DomainGrantKeys(MeshBus.Trust.IKeyResolver keys, string domain, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(domain);
        return AnyKnownKey(keyId => keys.Resolve(domain, keyId, MeshBus.Trust.KeyUsage.Grant, at).PublicKey);
    }

    /// <summary>
    /// A federation bundle's signers: every root in <paramref name="memberRoots"/>, each under its
    /// <see cref="MeshBus.Trust.RootKey.PolicyKeyId"/>.
    /// </summary>
    public static PolicySigners EveryRoot(IEnumerable<MeshBus.Trust.VerifierKey> memberRoots)
    {
        ArgumentNullException.ThrowIfNull(memberRoots);
        return EveryKey(memberRoots.ToDictionary(MeshBus.Trust.RootKey.PolicyKeyId, r => r.PublicKey, StringComparer.Ordinal));
    }

    /// <summary>A valid signature by every key in <paramref name="requiredKeys"/> (key id → raw Ed25519 public key).</summary>
    public static PolicySigners EveryKey(IReadOnlyDictionary<string, byte[]> requiredKeys)
    {
        ArgumentNullException.ThrowIfNull(requiredKeys);
        if (requiredKeys.Count == 0)
        {
            throw new ArgumentException("a required signer set cannot be empty", nameof(requiredKeys));
        }

        return new PolicySigners(null, new Dictionary<string, byte[]>(requiredKeys, StringComparer.Ordinal));
    }

    internal byte[]? KeyOf(string keyId) =>
        _required is not null ? (_required.TryGetValue(keyId, out var k) ? k : null) : _resolve!(keyId);

    internal IEnumerable<string> Required => _required?.Keys ?? [];
}

/// <summary>
/// Digest signing of bundles. A signature is Ed25519 over the UTF-8 bytes of <c>meshbus-policy/v1\n</c> followed by the
/// digest text (<c>sha256:&lt;hex&gt;</c>); the prefix keeps a policy signature from meaning anything else.
/// </summary>
public static class PolicyBundleSigning
{
    /// <summary>The bytes a signature covers for a digest.</summary>
    public static byte[] SignedMessage(string digest) => Encoding.UTF8.GetBytes(MeshBus.Trust.RootKey.PolicyDigestPrefix + digest);

    /// <summary>
    /// Returns <paramref name="bundleJson"/> with <c>digest</c> set to the digest of its content and a signature by
    /// <paramref name="keyId"/> added (replacing an earlier one by the same key id; signatures by other keys over the same
    /// digest are kept, those over another digest are dropped). Throws <see cref="PolicyBundleException"/> for an invalid bundle.
    /// </summary>
    public static string Sign(string bundleJson, string keyId, ReadOnlySpan<byte> privateKey)
    {
        var key = privateKey.ToArray();
        return Sign(bundleJson, keyId, message => Ed25519Keys.Sign(key, message));
    }

    /// <summary>
    /// Signs with a domain key behind <see cref="MeshBus.Trust.ISigner"/> (a worker or tool never sees the private key);
    /// otherwise as <see cref="Sign(string, string, ReadOnlySpan{byte})"/>.
    /// </summary>
    public static string Sign(string bundleJson, MeshBus.Trust.ISigner signer)
    {
        ArgumentNullException.ThrowIfNull(signer);
        return Sign(bundleJson, signer.KeyId, message => signer.Sign(message));
    }

    /// <summary>
    /// Adds a root's signature (a federation bundle needs every member's), under <see cref="MeshBus.Trust.RootKey.PolicyKeyId"/>;
    /// co-signatures over the same digest are kept. Otherwise as <see cref="Sign(string, string, ReadOnlySpan{byte})"/>.
    /// </summary>
    public static string SignAsRoot(string bundleJson, MeshBus.Trust.RootKey root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return SignDigest(bundleJson, MeshBus.Trust.RootKey.PolicyKeyId(root.VerifierKey), root.SignPolicyDigest);
    }

    private static string Sign(string bundleJson, string keyId, Func<byte[], byte[]> sign) =>
        SignDigest(bundleJson, keyId, digest => sign(SignedMessage(digest)));

    private static string SignDigest(string bundleJson, string keyId, Func<string, byte[]> signDigest)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        var unsigned = PolicyBundle.Parse(WithoutDigest(bundleJson));
        var bundle = TryParseKeepingSignatures(bundleJson);
        var sig = Base64Url.Encode(signDigest(unsigned.Digest));
        var keep = bundle is not null && bundle.Digest == unsigned.Digest
            ? bundle.Signatures.Where(s => s.KeyId != keyId).ToList()
            : [];
        keep.Add(new PolicySignature(keyId, sig));
        return Rewrite(bundleJson, unsigned.Digest, keep);
    }

    /// <summary>
    /// Checks the signatures of a parsed bundle against <paramref name="signers"/>; returns every problem (empty when the
    /// bundle is signed as required).
    /// </summary>
    public static IReadOnlyList<PolicyBundleError> Verify(PolicyBundle bundle, PolicySigners signers)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(signers);
        var errors = new List<PolicyBundleError>();
        var message = SignedMessage(bundle.Digest);
        var verified = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < bundle.Signatures.Count; i++)
        {
            var s = bundle.Signatures[i];
            var path = $"signatures[{i}]";
            if (!seen.Add(s.KeyId))
            {
                errors.Add(new(PolicyBundleErrorKind.Signature, path, $"key id '{s.KeyId}' signs more than once"));
                continue;
            }

            var key = signers.KeyOf(s.KeyId);
            if (key is null)
            {
                continue;
            }

            if (!Base64Url.TryDecode(s.Signature, out var sig) || !Ed25519Keys.Verify(key, message, sig))
            {
                errors.Add(new(PolicyBundleErrorKind.Signature, path, $"the signature by '{s.KeyId}' does not verify over digest {bundle.Digest}"));
                continue;
            }

            verified.Add(s.KeyId);
        }

        var required = signers.Required.ToList();
        if (required.Count > 0)
        {
            var missing = required.Where(k => !verified.Contains(k)).OrderBy(k => k, StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
            {
                errors.Add(new(PolicyBundleErrorKind.Signature, "signatures", "missing a valid signature by required signer(s): " + string.Join(", ", missing)));
            }
        }
        else if (verified.Count == 0 && errors.Count == 0)
        {
            errors.Add(new(PolicyBundleErrorKind.Signature, "signatures", bundle.Signatures.Count == 0
                ? "the bundle is not signed"
                : "no signature by a known key of " + bundle.Domain));
        }

        return errors;
    }

    /// <summary>Returns the document with <c>digest</c> set to its computed digest (no signature added).</summary>
    public static string WithDigest(string bundleJson)
    {
        var unsigned = PolicyBundle.Parse(WithoutDigest(bundleJson));
        return Rewrite(bundleJson, unsigned.Digest, []);
    }

    private static PolicyBundle? TryParseKeepingSignatures(string json) =>
        PolicyBundle.TryParse(json, out var b, out _) ? b : null;

    private static string WithoutDigest(string json)
    {
        using var doc = ParseDocument(json);
        return Write(doc.RootElement, null, null);
    }

    private static string Rewrite(string json, string digest, IReadOnlyList<PolicySignature> signatures)
    {
        using var doc = ParseDocument(json);
        return Write(doc.RootElement, digest, signatures);
    }

    private static JsonDocument ParseDocument(string json)
    {
        try
        {
            var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw new PolicyBundleException(new PolicyBundleError(PolicyBundleErrorKind.Schema, "", "a bundle is a JSON object"));
            }

            return doc;
        }
        catch (JsonException e)
        {
            throw new PolicyBundleException(new PolicyBundleError(PolicyBundleErrorKind.Syntax, "", "not valid JSON: " + e.Message));
        }
    }

    private static string Write(JsonElement root, string? digest, IReadOnlyList<PolicySignature>? signatures)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            foreach (var p in root.EnumerateObject())
            {
                if (Array.IndexOf(PolicyBundleParser.UnsignedMembers, p.Name) < 0)
                {
                    p.WriteTo(w);
                }
            }

            if (digest is not null)
            {
                w.WriteString("digest", digest);
            }

            if (signatures is { Count: > 0 })
            {
                w.WriteStartArray("signatures");
                foreach (var s in signatures)
                {
                    w.WriteStartObject();
                    w.WriteString("keyId", s.KeyId);
                    w.WriteString("sig", s.Signature);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
