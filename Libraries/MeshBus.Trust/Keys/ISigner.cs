using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// A working key that signs. The private key stays behind this interface so a hardware or cloud key store can
/// replace the file-based <see cref="Ed25519Signer"/>.
/// </summary>
public interface ISigner
{
    /// <summary>The key id published in the key set (<c>kid</c>).</summary>
    string KeyId { get; }

    /// <summary>What the key may sign.</summary>
    KeyUsage Usage { get; }

    /// <summary>The raw 32-byte Ed25519 public key.</summary>
    byte[] PublicKey { get; }

    /// <summary>Signs <paramref name="data"/> with Ed25519 (deterministic).</summary>
    byte[] Sign(ReadOnlySpan<byte> data);
}

/// <summary>An in-process Ed25519 key (from a key file or generated).</summary>
public sealed class Ed25519Signer : ISigner
{
    private readonly byte[] _privateKey;

    /// <summary>Wraps a 32-byte private seed.</summary>
    public Ed25519Signer(string keyId, KeyUsage usage, byte[] privateKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        ArgumentNullException.ThrowIfNull(privateKey);
        if (privateKey.Length != Ed25519Keys.KeySize)
        {
            throw new ArgumentException($"an Ed25519 private key is {Ed25519Keys.KeySize} bytes, not {privateKey.Length}", nameof(privateKey));
        }

        KeyId = keyId;
        Usage = usage;
        _privateKey = (byte[])privateKey.Clone();
        PublicKey = Ed25519Keys.PublicKeyOf(_privateKey);
    }

    /// <inheritdoc/>
    public string KeyId { get; }

    /// <inheritdoc/>
    public KeyUsage Usage { get; }

    /// <inheritdoc/>
    public byte[] PublicKey { get; }

    /// <summary>Creates a fresh key with the standard key id (<see cref="KeyIds.For"/>).</summary>
    public static Ed25519Signer Generate(KeyUsage usage)
    {
        var priv = Ed25519Keys.NewPrivateKey();
        return new Ed25519Signer(KeyIds.For(usage, Ed25519Keys.PublicKeyOf(priv)), usage, priv);
    }

    /// <inheritdoc/>
    public byte[] Sign(ReadOnlySpan<byte> data) => Ed25519Keys.Sign(_privateKey, data);

    /// <summary>The private seed, for writing the key file. Never log it.</summary>
    internal byte[] ExportPrivateKey() => (byte[])_privateKey.Clone();
}

/// <summary>Key ids of working keys: <c>&lt;usage&gt;-&lt;first 8 bytes of SHA-256(public key), hex&gt;</c>.</summary>
public static class KeyIds
{
    /// <summary>The key id of a working key.</summary>
    public static string For(KeyUsage usage, ReadOnlySpan<byte> publicKey) =>
        usage.ToWire() + "-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(publicKey)[..8]);
}
