using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// A C2SP signed-note verifier key: <c>&lt;name&gt;+&lt;8 hex digits key id&gt;+&lt;base64(type || public key)&gt;</c>,
/// with key id = the first four bytes (big-endian) of SHA-256(name || 0x0A || type || public key)
/// (c2sp.org/signed-note). Type 0x01 is Ed25519 (notes, checkpoints, MeshBus root keys); 0x04 is a timestamped
/// Ed25519 witness cosignature (c2sp.org/tlog-cosignature).
/// </summary>
public sealed record VerifierKey
{
    /// <summary>Signature type of plain Ed25519 notes.</summary>
    public const byte Ed25519Type = 0x01;

    /// <summary>Signature type of tlog-cosignature/v1 timestamped Ed25519 cosignatures.</summary>
    public const byte CosignatureType = 0x04;

    private VerifierKey(string name, byte type, byte[] publicKey, uint keyId)
    {
        Name = name;
        SignatureType = type;
        PublicKey = publicKey;
        KeyId = keyId;
    }

    /// <summary>The key name (a schema-less URL, e.g. the domain <c>acme.example/prod</c>).</summary>
    public string Name { get; }

    /// <summary>The signature type byte (<see cref="Ed25519Type"/> or <see cref="CosignatureType"/>).</summary>
    public byte SignatureType { get; }

    /// <summary>The raw 32-byte Ed25519 public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>The 32-bit key id.</summary>
    public uint KeyId { get; }

    /// <summary>The key id as 8 lowercase hex digits.</summary>
    public string KeyIdHex => KeyId.ToString("x8", CultureInfo.InvariantCulture);

    /// <summary>Builds the verifier key of a public key.</summary>
    public static VerifierKey Create(string name, ReadOnlySpan<byte> publicKey, byte signatureType = Ed25519Type)
    {
        CheckName(name);
        if (publicKey.Length != Ed25519Keys.KeySize)
        {
            throw new ArgumentException("an Ed25519 public key is 32 bytes", nameof(publicKey));
        }

        if (signatureType is not (Ed25519Type or CosignatureType))
        {
            throw new ArgumentException($"unsupported signature type 0x{signatureType:x2}", nameof(signatureType));
        }

        return new VerifierKey(name, signatureType, publicKey.ToArray(), ComputeKeyId(name, signatureType, publicKey));
    }

    /// <summary>The key id per c2sp.org/signed-note: SHA-256(name || 0x0A || type || public key)[:4], big-endian.</summary>
    public static uint ComputeKeyId(string name, byte signatureType, ReadOnlySpan<byte> publicKey)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var input = new byte[nameBytes.Length + 2 + publicKey.Length];
        nameBytes.CopyTo(input, 0);
        input[nameBytes.Length] = 0x0A;
        input[nameBytes.Length + 1] = signatureType;
        publicKey.CopyTo(input.AsSpan(nameBytes.Length + 2));
        return BinaryPrimitives.ReadUInt32BigEndian(SHA256.HashData(input));
    }

    /// <summary>Parses a verifier key strictly; throws <see cref="FormatException"/> with the reason.</summary>
    public static VerifierKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.Trim();
        var parts = text.Split('+', 3); // the base64 key itself may contain '+'
        if (parts.Length != 3)
        {
            throw new FormatException("a verifier key is <name>+<hex key id>+<base64 key>");
        }

        var (name, hex, b64) = (parts[0], parts[1], parts[2]);
        CheckName(name, asFormat: true);
        if (hex.Length != 8 || !uint.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var id) || hex != hex.ToLowerInvariant())
        {
            throw new FormatException("the key id of a verifier key is 8 lowercase hex digits");
        }

        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(b64);
        }
        catch (FormatException)
        {
            throw new FormatException("the key of a verifier key is not standard base64");
        }

        if (raw.Length != 1 + Ed25519Keys.KeySize || raw[0] is not (Ed25519Type or CosignatureType) || Convert.ToBase64String(raw) != b64)
        {
            throw new FormatException("the key of a verifier key must be a type byte (0x01 or 0x04) followed by a 32-byte Ed25519 key");
        }

        var key = new VerifierKey(name, raw[0], raw[1..], ComputeKeyId(name, raw[0], raw.AsSpan(1)));
        if (key.KeyId != id)
        {
            throw new FormatException($"the key id {hex} does not match the name and key (expected {key.KeyIdHex})");
        }

        return key;
    }

    /// <summary>Parses, returning false instead of throwing.</summary>
    public static bool TryParse(string? text, out VerifierKey? key)
    {
        key = null;
        if (text is null)
        {
            return false;
        }

        try
        {
            key = Parse(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>The text form.</summary>
    public override string ToString() => $"{Name}+{KeyIdHex}+{Convert.ToBase64String([SignatureType, .. PublicKey])}";

    /// <summary>Whether two verifier keys are the same name, type and key.</summary>
    public bool Equals(VerifierKey? other) => other is not null && Name == other.Name && SignatureType == other.SignatureType && PublicKey.AsSpan().SequenceEqual(other.PublicKey);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Name, SignatureType, KeyId);

    private static void CheckName(string name, bool asFormat = false)
    {
        // signed-note: a key name is non-empty and contains no Unicode spaces and no plus.
        var bad = string.IsNullOrEmpty(name) || name.Contains('+', StringComparison.Ordinal) || name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c));
        if (bad)
        {
            var message = $"'{name}' is not a valid key name (non-empty, no spaces, no '+')";
            throw asFormat ? new FormatException(message) : new ArgumentException(message, nameof(name));
        }
    }
}
