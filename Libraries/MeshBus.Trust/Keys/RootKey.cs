using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// A domain's root key. It signs only key sets and federation policy digests (each with its own domain-separation
/// prefix), so even a leaked working key never lets anyone publish keys or change a federation's policy. Peers pin its
/// verifier key (<see cref="VerifierKey"/>, name = the domain).
/// </summary>
public sealed class RootKey
{
    private readonly byte[] _privateKey;

    /// <summary>Wraps a root private seed.</summary>
    public RootKey(string domain, byte[] privateKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(domain);
        ArgumentNullException.ThrowIfNull(privateKey);
        Domain = domain;
        _privateKey = (byte[])privateKey.Clone();
        PublicKey = Ed25519Keys.PublicKeyOf(_privateKey);
    }

    /// <summary>The domain the key roots.</summary>
    public string Domain { get; }

    /// <summary>Raw public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>The verifier key peers pin: <c>&lt;domain&gt;+&lt;key id&gt;+&lt;base64(0x01||pub)&gt;</c>.</summary>
    public VerifierKey VerifierKey => VerifierKey.Create(Domain, PublicKey);

    /// <summary>Creates a new root key.</summary>
    public static RootKey Generate(string domain) => new(domain, Ed25519Keys.NewPrivateKey());

    /// <summary>The prefix of a policy digest signature: <c>meshbus-policy/v1</c> and a line feed (docs/policy.md).</summary>
    public const string PolicyDigestPrefix = "meshbus-policy/v1\n";

    /// <summary>The key id a root's policy signature carries: <c>&lt;domain&gt;+&lt;8 hex digits key id&gt;</c> of its verifier key.</summary>
    public static string PolicyKeyId(VerifierKey root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return root.Name + "+" + root.KeyIdHex;
    }

    /// <summary>
    /// Signs a federation policy bundle's digest (<c>sha256:</c> and 64 lowercase hex digits): Ed25519 over
    /// <see cref="PolicyDigestPrefix"/> + digest. A federation policy version needs this from every member's root.
    /// </summary>
    public byte[] SignPolicyDigest(string digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        if (digest.Length != 71 || !digest.StartsWith("sha256:", StringComparison.Ordinal) || digest.AsSpan(7).ContainsAnyExcept("0123456789abcdef"))
        {
            throw new ArgumentException("a policy digest is sha256: followed by 64 lowercase hex digits", nameof(digest));
        }

        return Sign(System.Text.Encoding.UTF8.GetBytes(PolicyDigestPrefix + digest));
    }

    internal byte[] Sign(ReadOnlySpan<byte> data) => Ed25519Keys.Sign(_privateKey, data);

    internal byte[] ExportPrivateKey() => (byte[])_privateKey.Clone();
}
