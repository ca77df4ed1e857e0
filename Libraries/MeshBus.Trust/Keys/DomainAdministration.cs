namespace MeshBus.Trust;

/// <summary>Lifetimes used when creating and rotating keys.</summary>
public sealed record KeyLifetimes
{
    /// <summary>How long a new working key is valid.</summary>
    public TimeSpan WorkingKey { get; init; } = TimeSpan.FromDays(90);

    /// <summary>How long a newly signed key set is valid (it must be re-signed before, e.g. by a rotation).</summary>
    public TimeSpan KeySet { get; init; } = TimeSpan.FromDays(30);

    /// <summary>
    /// How long a rotated-out key keeps verifying, so artifacts signed just before the rotation (grants,
    /// credentials, envelopes in flight) stay valid. Must exceed the longest grant and credential lifetime.
    /// </summary>
    public TimeSpan Overlap { get; init; } = TimeSpan.FromDays(1);
}

/// <summary>
/// Operator actions on a domain directory that need the root private key: create, rotate, revoke. Each writes a new
/// key set with a higher sequence, atomically, after the new private keys are on disk.
/// </summary>
public static class DomainAdministration
{
    /// <summary>
    /// Creates a domain directory: a root key, one working key per usage and key set 1. Refuses a directory that
    /// already holds a root key.
    /// </summary>
    public static DomainKeys Initialize(string directory, string domain, DateTimeOffset now, KeyLifetimes? lifetimes = null)
    {
        lifetimes ??= new KeyLifetimes();
        _ = VerifierKey.Create(domain, new byte[32]); // validates the domain as a key name
        if (File.Exists(Path.Combine(directory, DomainKeys.RootKeyFile)) || File.Exists(Path.Combine(directory, DomainKeys.KeySetFile)))
        {
            throw new IOException($"'{directory}' already holds a domain (refusing to overwrite its keys)");
        }

        KeyFiles.CreatePrivateDirectory(directory);
        var root = RootKey.Generate(domain);
        DomainKeys.WriteRootKey(directory, root);
        KeyFiles.WritePublic(Path.Combine(directory, DomainKeys.RootVerifierKeyFile), root.VerifierKey + "\n");
        var entries = new List<KeySetEntry>();
        foreach (var usage in KeyUsages.All)
        {
            entries.Add(NewKey(directory, usage, now, lifetimes));
        }

        var set = new KeySet(domain, 1, Truncate(now), Truncate(now + lifetimes.KeySet), entries, []);
        Publish(directory, set, root);
        return DomainKeys.Load(directory);
    }

    /// <summary>
    /// Rotates the keys of <paramref name="usages"/> (every usage when empty): a new key per usage becomes current,
    /// the previous ones stay in the key set until <see cref="KeyLifetimes.Overlap"/> from now and their private
    /// keys are deleted. The key set is re-signed with a new expiry and sequence + 1.
    /// </summary>
    public static KeySet Rotate(string directory, DateTimeOffset now, IReadOnlyCollection<KeyUsage> usages, KeyLifetimes? lifetimes = null)
    {
        lifetimes ??= new KeyLifetimes();
        var (root, current) = Open(directory);
        var rotate = usages.Count == 0 ? KeyUsages.All : usages;
        var entries = new List<KeySetEntry>();
        foreach (var k in current.Keys)
        {
            if (rotate.Contains(k.Usage) && k.NotAfter > now + lifetimes.Overlap)
            {
                entries.Add(k with { NotAfter = Truncate(now + lifetimes.Overlap) });
                DeletePrivate(directory, k.KeyId);
            }
            else
            {
                entries.Add(k);
            }
        }

        // Drop keys whose validity ended before the overlap window of this rotation; revocations stay listed.
        entries.RemoveAll(k => k.NotAfter < now - lifetimes.Overlap);
        foreach (var usage in rotate)
        {
            entries.Add(NewKey(directory, usage, now, lifetimes));
        }

        var next = new KeySet(current.Domain, current.Sequence + 1, Truncate(now), Truncate(now + lifetimes.KeySet), entries, current.Revoked);
        Publish(directory, next, root);
        return next;
    }

    /// <summary>
    /// The domain's root key from its directory (owner-only <c>root.key</c>), for the offline signatures only a root
    /// gives: key sets, and federation policy digests (<see cref="RootKey.SignPolicyDigest"/>).
    /// </summary>
    public static RootKey ReadRoot(string directory) => DomainKeys.ReadRootKey(directory);

    /// <summary>
    /// Revokes a key id: it is listed in <c>revoked</c> (it never resolves again, for any time), its private key is
    /// deleted, and when it was the current key of its usage a replacement is created at once.
    /// </summary>
    public static KeySet Revoke(string directory, string keyId, DateTimeOffset now, KeyLifetimes? lifetimes = null)
    {
        lifetimes ??= new KeyLifetimes();
        var (root, current) = Open(directory);
        var entry = current.Keys.FirstOrDefault(k => k.KeyId == keyId)
            ?? throw new ArgumentException($"key '{keyId}' is not in the key set of {current.Domain}");
        if (current.Revoked.Contains(keyId, StringComparer.Ordinal))
        {
            throw new InvalidOperationException($"key '{keyId}' is already revoked");
        }

        var wasCurrent = current.Current(entry.Usage, now)?.KeyId == keyId;
        var entries = current.Keys.ToList();
        DeletePrivate(directory, keyId);
        var revoked = current.Revoked.Append(keyId).ToList();
        if (wasCurrent || current.Keys.All(k => k.Usage != entry.Usage || revoked.Contains(k.KeyId)))
        {
            entries.Add(NewKey(directory, entry.Usage, now, lifetimes));
        }

        var next = new KeySet(current.Domain, current.Sequence + 1, Truncate(now), Truncate(now + lifetimes.KeySet), entries, revoked);
        Publish(directory, next, root);
        return next;
    }

    private static (RootKey Root, KeySet Current) Open(string directory)
    {
        var root = DomainKeys.ReadRootKey(directory);
        var keys = DomainKeys.Load(directory);
        if (!keys.Root.PublicKey.AsSpan().SequenceEqual(root.PublicKey))
        {
            throw new KeyFileException($"root.key in '{directory}' does not match root.vkey");
        }

        return (root, keys.KeySet);
    }

    private static KeySetEntry NewKey(string directory, KeyUsage usage, DateTimeOffset now, KeyLifetimes lifetimes)
    {
        var signer = Ed25519Signer.Generate(usage);
        DomainKeys.WriteWorkingKey(directory, signer);
        return new KeySetEntry(signer.KeyId, usage, Crypto.Base64Url.Encode(signer.PublicKey), Truncate(now), Truncate(now + lifetimes.WorkingKey));
    }

    private static void Publish(string directory, KeySet set, RootKey root) =>
        KeyFiles.WritePublic(Path.Combine(directory, DomainKeys.KeySetFile), set.Sign(root) + "\n");

    private static void DeletePrivate(string directory, string keyId)
    {
        var path = DomainKeys.WorkingKeyPath(directory, keyId);
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    private static DateTimeOffset Truncate(DateTimeOffset t) => DateTimeOffset.FromUnixTimeSeconds(t.ToUnixTimeSeconds());
}
