using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// A domain's root key. It signs only key sets (with a domain-separation prefix), so even a leaked working key never
/// lets anyone publish keys. Peers pin its verifier key (<see cref="VerifierKey"/>, name = the domain).
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

    internal byte[] Sign(ReadOnlySpan<byte> data) => Ed25519Keys.Sign(_privateKey, data);

    internal byte[] ExportPrivateKey() => (byte[])_privateKey.Clone();
}
