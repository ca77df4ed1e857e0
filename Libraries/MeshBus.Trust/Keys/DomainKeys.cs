using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// A domain directory as written by <c>meshbus keys init</c> (see docs/trust.md):
/// <list type="bullet">
/// <item><c>root.key</c> — the root private key (0600; keep it offline, needed only to rotate, revoke or sign federation policy)</item>
/// <item><c>root.vkey</c> — the root verifier key peers pin</item>
/// <item><c>keyset.json</c> — the current key set signed by the root</item>
/// <item><c>keys/&lt;kid&gt;.key</c> — working private keys (0600, directory 0700)</item>
/// <item><c>trust/</c> — pinned peer roots (<c>*.vkey</c>) and their key sets (<c>*.keyset.json</c>)</item>
/// <item><c>attesters/</c> — registered workload attester keys (<c>*.vkey</c>)</item>
/// </list>
/// <see cref="Load"/> gives a worker the verified key set and only the private keys of the usages it asks for.
/// </summary>
public sealed class DomainKeys
{
    /// <summary>File name of the root private key.</summary>
    public const string RootKeyFile = "root.key";

    /// <summary>File name of the root verifier key.</summary>
    public const string RootVerifierKeyFile = "root.vkey";

    /// <summary>File name of the signed key set.</summary>
    public const string KeySetFile = "keyset.json";

    /// <summary>Directory of working private keys.</summary>
    public const string KeysDirectory = "keys";

    /// <summary>Directory of the trust config (pinned peers).</summary>
    public const string TrustDirectory = "trust";

    /// <summary>Directory of registered attester keys.</summary>
    public const string AttestersDirectory = "attesters";

    private readonly Dictionary<string, Ed25519Signer> _signers;

    private DomainKeys(string directory, VerifierKey root, KeySet keySet, string signedKeySet, Dictionary<string, Ed25519Signer> signers, IReadOnlyCollection<KeyUsage> usages)
    {
        DirectoryPath = directory;
        Root = root;
        KeySet = keySet;
        SignedKeySet = signedKeySet;
        _signers = signers;
        Usages = usages;
    }

    /// <summary>The domain name.</summary>
    public string Domain => KeySet.Domain;

    /// <summary>The domain directory.</summary>
    public string DirectoryPath { get; }

    /// <summary>The root verifier key.</summary>
    public VerifierKey Root { get; }

    /// <summary>The verified current key set.</summary>
    public KeySet KeySet { get; }

    /// <summary>The signed key set document, as published to peers.</summary>
    public string SignedKeySet { get; }

    /// <summary>The usages whose private keys were loaded.</summary>
    public IReadOnlyCollection<KeyUsage> Usages { get; }

    /// <summary>Every loaded signer (only of <see cref="Usages"/>).</summary>
    public IReadOnlyCollection<ISigner> Signers => _signers.Values;

    /// <summary>
    /// Loads a domain directory: verifies <c>keyset.json</c> against <c>root.vkey</c> and loads the private keys of
    /// the key set's unrevoked keys of <paramref name="usages"/> only (none when empty). Key files others can read are
    /// refused (<see cref="KeyFileException"/>). The root private key is never read.
    /// </summary>
    public static DomainKeys Load(string directory, params KeyUsage[] usages)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var rootPath = Path.Combine(directory, RootVerifierKeyFile);
        var setPath = Path.Combine(directory, KeySetFile);
        if (!File.Exists(rootPath) || !File.Exists(setPath))
        {
            throw new KeyFileException($"'{directory}' is not a domain directory (missing {RootVerifierKeyFile} or {KeySetFile}; create one with 'meshbus keys init')");
        }

        var root = VerifierKey.Parse(File.ReadAllText(rootPath));
        var signed = File.ReadAllText(setPath);
        var set = KeySet.Verify(signed, root.PublicKey);
        if (set.Domain != root.Name)
        {
            throw new KeySetException(Contracts.GovernanceReason.SignatureInvalid, $"key set is for '{set.Domain}' but the root key is named '{root.Name}'");
        }

        var wanted = usages.Distinct().ToArray();
        var signers = new Dictionary<string, Ed25519Signer>(StringComparer.Ordinal);
        foreach (var entry in set.Keys.Where(k => wanted.Contains(k.Usage) && !set.Revoked.Contains(k.KeyId, StringComparer.Ordinal)))
        {
            var path = WorkingKeyPath(directory, entry.KeyId);
            if (!File.Exists(path))
            {
                continue; // retired keys stay in the key set for verification; their private halves are deleted
            }

            var signer = ReadWorkingKey(path);
            if (signer.KeyId != entry.KeyId || signer.Usage != entry.Usage || Base64Url.Encode(signer.PublicKey) != entry.PublicKey)
            {
                throw new KeyFileException($"key file '{path}' does not match key '{entry.KeyId}' of the key set");
            }

            signers[entry.KeyId] = signer;
        }

        return new DomainKeys(directory, root, set, signed, signers, wanted);
    }

    /// <summary>
    /// The signer to use now for a usage: the key set's current key (<see cref="KeySet.Current"/>). Throws
    /// <see cref="InvalidOperationException"/> when the usage was not loaded or its private key is missing.
    /// </summary>
    public ISigner Signer(KeyUsage usage, DateTimeOffset at)
    {
        if (!Usages.Contains(usage))
        {
            throw new InvalidOperationException($"the {usage.ToWire()} keys of {Domain} were not loaded by this worker");
        }

        var current = KeySet.Current(usage, at) ?? throw new InvalidOperationException($"{Domain} has no valid {usage.ToWire()} key at {at:O}; rotate keys");
        return _signers.TryGetValue(current.KeyId, out var s)
            ? s
            : throw new InvalidOperationException($"the private key of {current.KeyId} is not in {Path.Combine(DirectoryPath, KeysDirectory)}");
    }

    /// <summary>The trust config of this domain: its own key set plus the peers pinned in <c>trust/</c>.</summary>
    public TrustConfig LoadTrust()
    {
        var dir = Path.Combine(DirectoryPath, TrustDirectory);
        return Directory.Exists(dir) ? TrustConfig.LoadDirectory(dir, KeySet) : new TrustConfig([], KeySet);
    }

    internal static string WorkingKeyPath(string directory, string keyId) => Path.Combine(directory, KeysDirectory, keyId + ".key");

    internal static Ed25519Signer ReadWorkingKey(string path)
    {
        try
        {
            var o = StrictJson.Parse(KeyFiles.ReadPrivate(path));
            if (ClaimsJson.String(o, "type") != "meshbus-working-key/v1")
            {
                throw new FormatException("not a meshbus-working-key/v1 file");
            }

            return new Ed25519Signer(ClaimsJson.String(o, "kid"), KeyUsages.Parse(ClaimsJson.String(o, "usage")), Base64Url.Decode(ClaimsJson.String(o, "privateKey")));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new KeyFileException($"key file '{path}' is malformed: {e.Message}", e);
        }
    }

    internal static void WriteWorkingKey(string directory, Ed25519Signer signer)
    {
        KeyFiles.CreatePrivateDirectory(Path.Combine(directory, KeysDirectory));
        var o = new JsonObject
        {
            ["type"] = "meshbus-working-key/v1",
            ["kid"] = signer.KeyId,
            ["usage"] = signer.Usage.ToWire(),
            ["privateKey"] = Base64Url.Encode(signer.ExportPrivateKey()),
        };
        KeyFiles.WritePrivate(WorkingKeyPath(directory, signer.KeyId), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    internal static RootKey ReadRootKey(string directory)
    {
        var path = Path.Combine(directory, RootKeyFile);
        try
        {
            var o = StrictJson.Parse(KeyFiles.ReadPrivate(path));
            if (ClaimsJson.String(o, "type") != "meshbus-root-key/v1")
            {
                throw new FormatException("not a meshbus-root-key/v1 file");
            }

            return new RootKey(ClaimsJson.String(o, "domain"), Base64Url.Decode(ClaimsJson.String(o, "privateKey")));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new KeyFileException($"root key file '{path}' is malformed: {e.Message}", e);
        }
    }

    internal static void WriteRootKey(string directory, RootKey root)
    {
        var o = new JsonObject
        {
            ["type"] = "meshbus-root-key/v1",
            ["domain"] = root.Domain,
            ["privateKey"] = Base64Url.Encode(root.ExportPrivateKey()),
        };
        KeyFiles.WritePrivate(Path.Combine(directory, RootKeyFile), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
