using System.Globalization;

namespace MeshBus.Trust.Notes;

/// <summary>Verifier key text helpers for notes.</summary>
public static class NoteKeys
{
    /// <summary>
    /// Parses <c>&lt;name&gt;+&lt;hex key id&gt;+&lt;base64(type || key)&gt;</c>. The name holds no <c>+</c> but standard
    /// base64 may, so the text is split at its first two <c>+</c> only. Throws <see cref="FormatException"/>.
    /// </summary>
    public static VerifierKey ParseVerifierKey(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().Split('+', 3);
        if (parts.Length != 3 || parts[0].Length == 0)
        {
            throw new FormatException("a verifier key is <name>+<hex key id>+<base64 key>");
        }

        if (parts[1].Length != 8 || !uint.TryParse(parts[1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var id) || parts[1] != parts[1].ToLowerInvariant())
        {
            throw new FormatException("the key id of a verifier key is 8 lowercase hex digits");
        }

        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException)
        {
            throw new FormatException("the key of a verifier key is not standard base64");
        }

        if (raw.Length != 33 || raw[0] is not (VerifierKey.Ed25519Type or VerifierKey.CosignatureType) || Convert.ToBase64String(raw) != parts[2])
        {
            throw new FormatException("the key of a verifier key is a type byte (0x01 or 0x04) and a 32-byte Ed25519 key");
        }

        VerifierKey key;
        try
        {
            key = VerifierKey.Create(parts[0], raw.AsSpan(1), raw[0]);
        }
        catch (ArgumentException e)
        {
            throw new FormatException(e.Message);
        }

        return key.KeyId == id ? key : throw new FormatException($"the key id {parts[1]} does not match the name and key (expected {key.KeyIdHex})");
    }
}
