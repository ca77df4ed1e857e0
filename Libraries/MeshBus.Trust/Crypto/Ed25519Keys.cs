using System.Security.Cryptography;
using Org.BouncyCastle.Math.EC.Rfc8032;

namespace MeshBus.Trust.Crypto;

/// <summary>
/// Ed25519 (RFC 8032, pure) on BouncyCastle. Verification is strict: a non-canonical <c>S</c> (≥ L), a non-canonical
/// or small-order public key encoding, or a wrong length is rejected, so a signature has exactly one valid encoding.
/// </summary>
public static class Ed25519Keys
{
    /// <summary>Length of a public key, a private seed, in bytes.</summary>
    public const int KeySize = 32;

    /// <summary>Length of a signature in bytes.</summary>
    public const int SignatureSize = 64;

    /// <summary>Creates a new private seed from the operating system's CSPRNG.</summary>
    public static byte[] NewPrivateKey() => RandomNumberGenerator.GetBytes(KeySize);

    /// <summary>Derives the public key of a private seed.</summary>
    public static byte[] PublicKeyOf(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != KeySize)
        {
            throw new ArgumentException($"an Ed25519 private key is {KeySize} bytes, not {privateKey.Length}", nameof(privateKey));
        }

        var pub = new byte[KeySize];
        Ed25519.GeneratePublicKey(privateKey.ToArray(), 0, pub, 0);
        return pub;
    }

    /// <summary>Signs <paramref name="message"/> (deterministic: the same key and message give the same bytes).</summary>
    public static byte[] Sign(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> message)
    {
        if (privateKey.Length != KeySize)
        {
            throw new ArgumentException($"an Ed25519 private key is {KeySize} bytes, not {privateKey.Length}", nameof(privateKey));
        }

        var sig = new byte[SignatureSize];
        Ed25519.Sign(privateKey.ToArray(), 0, message.ToArray(), 0, message.Length, sig, 0);
        return sig;
    }

    /// <summary>Verifies a signature strictly; never throws for malformed input, it returns false.</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != KeySize || signature.Length != SignatureSize)
        {
            return false;
        }

        try
        {
            return Ed25519.Verify(signature.ToArray(), 0, publicKey.ToArray(), 0, message.ToArray(), 0, message.Length);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
