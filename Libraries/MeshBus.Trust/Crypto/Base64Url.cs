namespace MeshBus.Trust.Crypto;

/// <summary>Base64url without padding (RFC 4648 §5), as JOSE uses it. Decoding is strict: padding or stray characters are rejected.</summary>
public static class Base64Url
{
    /// <summary>Encodes bytes.</summary>
    public static string Encode(ReadOnlySpan<byte> data) => System.Buffers.Text.Base64Url.EncodeToString(data);

    /// <summary>Decodes strictly; throws <see cref="FormatException"/> on anything but unpadded base64url.</summary>
    public static byte[] Decode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var c in text)
        {
            var ok = c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_';
            if (!ok)
            {
                throw new FormatException("not unpadded base64url");
            }
        }

        if (text.Length % 4 == 1)
        {
            throw new FormatException("not unpadded base64url: impossible length");
        }

        var bytes = System.Buffers.Text.Base64Url.DecodeFromChars(text);
        // Reject non-canonical encodings (unused trailing bits set): re-encoding must give the same text.
        if (!string.Equals(Encode(bytes), text, StringComparison.Ordinal))
        {
            throw new FormatException("non-canonical base64url");
        }

        return bytes;
    }

    /// <summary>Decodes, returning false instead of throwing.</summary>
    public static bool TryDecode(string? text, out byte[] bytes)
    {
        bytes = [];
        if (text is null)
        {
            return false;
        }

        try
        {
            bytes = Decode(text);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
