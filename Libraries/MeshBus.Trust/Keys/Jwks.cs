using System.Text.Json;
using System.Text.Json.Nodes;

namespace MeshBus.Trust;

/// <summary>
/// JSON Web Key Sets (RFC 7517) of a key set's public keys as RFC 8037 OKP Ed25519 keys with <c>kid</c>,
/// <c>use: sig</c> and <c>alg: EdDSA</c>, so any JOSE library can verify grants and credentials. The MeshBus usage
/// is in the extra member <c>meshbus_usage</c> (a verifier must still check it: a grant must be signed by a grant key).
/// </summary>
public static class Jwks
{
    /// <summary>The JWKS of every unrevoked key of <paramref name="keySet"/> not expired at <paramref name="at"/>.</summary>
    public static JsonObject FromKeySet(KeySet keySet, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(keySet);
        var keys = new JsonArray();
        foreach (var k in keySet.Keys.Where(k => !keySet.Revoked.Contains(k.KeyId, StringComparer.Ordinal) && k.NotAfter >= at))
        {
            keys.Add(new JsonObject
            {
                ["kty"] = "OKP",
                ["crv"] = "Ed25519",
                ["x"] = k.PublicKey,
                ["kid"] = k.KeyId,
                ["use"] = "sig",
                ["alg"] = "EdDSA",
                ["meshbus_usage"] = k.Usage.ToWire(),
                ["nbf"] = k.NotBefore.ToUnixTimeSeconds(),
                ["exp"] = k.NotAfter.ToUnixTimeSeconds(),
            });
        }

        return new JsonObject { ["keys"] = keys };
    }

    /// <summary>The JWKS as indented JSON text.</summary>
    public static string ToText(KeySet keySet, DateTimeOffset at) =>
        FromKeySet(keySet, at).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
}

/// <summary>
/// The files a peer or auditor pins, as written by <c>meshbus trust export --out DIR</c> and read by
/// <see cref="TrustConfig.LoadDirectory"/> (and <c>meshbus proof verify --trust DIR</c>): per domain, with
/// <c>&lt;slug&gt;</c> = <see cref="Slug"/> of the domain name, <c>&lt;slug&gt;.vkey</c> (the root verifier key, one
/// line), <c>&lt;slug&gt;.keyset.json</c> (the signed key set) and, for the JWKS format, <c>&lt;slug&gt;.jwks.json</c>.
/// Several domains can be exported into one directory.
/// </summary>
public static class TrustFiles
{
    /// <summary>A file-name-safe form of a domain name: every character outside <c>[A-Za-z0-9.-]</c> becomes <c>_</c>.</summary>
    public static string Slug(string domain) =>
        new(domain.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '_').ToArray());

    /// <summary>Writes the root vkey and the signed key set of a domain into <paramref name="directory"/>; returns the paths.</summary>
    public static IReadOnlyList<string> Export(DomainKeys keys, string directory, bool jwks, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(keys);
        Directory.CreateDirectory(directory);
        var slug = Slug(keys.Domain);
        var written = new List<string>();
        var vkey = Path.Combine(directory, slug + ".vkey");
        KeyFiles.WritePublic(vkey, keys.Root + "\n");
        written.Add(vkey);
        var set = Path.Combine(directory, slug + ".keyset.json");
        KeyFiles.WritePublic(set, keys.SignedKeySet.TrimEnd() + "\n");
        written.Add(set);
        if (jwks)
        {
            var path = Path.Combine(directory, slug + ".jwks.json");
            KeyFiles.WritePublic(path, Jwks.ToText(keys.KeySet, now));
            written.Add(path);
        }

        return written;
    }

    /// <summary>
    /// Pins a peer's root in a domain's <c>trust/</c> directory (<c>meshbus trust add</c>). The verifier key's name
    /// must be the peer name. Pinning a different key for an already pinned peer needs <paramref name="replace"/>.
    /// </summary>
    public static string Pin(string domainDirectory, string peer, VerifierKey root, bool replace)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (root.Name != peer)
        {
            throw new ArgumentException($"the root key is named '{root.Name}', not '{peer}'");
        }

        if (root.SignatureType != VerifierKey.Ed25519Type)
        {
            throw new ArgumentException("a root key is an Ed25519 (type 0x01) verifier key");
        }

        var dir = Path.Combine(domainDirectory, DomainKeys.TrustDirectory);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, Slug(peer) + ".vkey");
        if (File.Exists(path))
        {
            var existing = VerifierKey.Parse(File.ReadAllText(path));
            if (existing.Name != peer)
            {
                throw new InvalidOperationException($"'{path}' already pins '{existing.Name}' (file name collision)");
            }

            if (!existing.Equals(root) && !replace)
            {
                throw new InvalidOperationException($"a different root is already pinned for '{peer}' ({existing}); pass --replace to change it");
            }
        }

        KeyFiles.WritePublic(path, root + "\n");
        return path;
    }

    /// <summary>Stores a peer key set in <c>trust/</c> after checking it against the pinned root (signature, sequence, expiry).</summary>
    public static string StorePeerKeySet(string domainDirectory, string signedKeySet, DateTimeOffset now)
    {
        var dir = Path.Combine(domainDirectory, DomainKeys.TrustDirectory);
        var config = TrustConfig.LoadDirectory(dir);
        var result = config.AcceptKeySet(signedKeySet, now);
        if (!result.IsValid)
        {
            throw new KeySetException(result.Reason, result.Detail);
        }

        var path = Path.Combine(dir, Slug(result.Value!.Domain) + ".keyset.json");
        KeyFiles.WritePublic(path, signedKeySet.TrimEnd() + "\n");
        return path;
    }
}
