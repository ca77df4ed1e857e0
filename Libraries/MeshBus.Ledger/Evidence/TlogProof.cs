using System.Globalization;
using System.Text;

namespace MeshBus.Ledger.Evidence;

/// <summary>
/// A <c>c2sp.org/tlog-proof@v1</c> text: the header line, an optional <c>extra</c> line, <c>index N</c>, the
/// inclusion proof hashes (base64, one per line, leaf's sibling first), a blank line, and the signed checkpoint.
/// </summary>
/// <param name="Index">The entry's index.</param>
/// <param name="Proof">The inclusion proof.</param>
/// <param name="Checkpoint">The signed checkpoint note, verbatim (with any cosignatures).</param>
/// <param name="Extra">Opaque, unauthenticated extra data, or null.</param>
public sealed record TlogProof(long Index, IReadOnlyList<byte[]> Proof, string Checkpoint, byte[]? Extra = null)
{
    /// <summary>The first line.</summary>
    public const string Header = "c2sp.org/tlog-proof@v1";

    /// <summary>The text form.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(Header).Append('\n');
        if (Extra is not null)
        {
            sb.Append("extra ").Append(Convert.ToBase64String(Extra)).Append('\n');
        }

        sb.Append("index ").Append(Index.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var h in Proof)
        {
            sb.Append(Convert.ToBase64String(h)).Append('\n');
        }

        return sb.Append('\n').Append(Checkpoint).ToString();
    }

    /// <summary>Parses a proof text strictly; throws <see cref="FormatException"/> with the reason.</summary>
    public static TlogProof Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var blank = text.IndexOf("\n\n", StringComparison.Ordinal);
        if (blank < 0)
        {
            throw new FormatException("a tlog-proof has a blank line before its checkpoint");
        }

        var lines = text[..blank].Split('\n');
        var checkpoint = text[(blank + 2)..];
        if (lines[0] != Header)
        {
            throw new FormatException($"a tlog-proof starts with '{Header}'");
        }

        var i = 1;
        byte[]? extra = null;
        if (i < lines.Length && lines[i].StartsWith("extra ", StringComparison.Ordinal))
        {
            extra = Base64(lines[i]["extra ".Length..], "extra data");
            i++;
        }

        if (i >= lines.Length || !lines[i].StartsWith("index ", StringComparison.Ordinal))
        {
            throw new FormatException("a tlog-proof has an 'index N' line");
        }

        var n = lines[i]["index ".Length..];
        if (n.Length == 0 || (n.Length > 1 && n[0] == '0') || !n.All(char.IsAsciiDigit) || !long.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
        {
            throw new FormatException($"'{n}' is not an index (decimal, no leading zeros)");
        }

        var proof = new List<byte[]>();
        foreach (var line in lines.Skip(i + 1))
        {
            var h = Base64(line, "proof hash");
            if (h.Length != 32)
            {
                throw new FormatException("a proof hash is 32 bytes");
            }

            proof.Add(h);
        }

        return new TlogProof(index, proof, checkpoint, extra);
    }

    private static byte[] Base64(string s, string what)
    {
        try
        {
            var b = Convert.FromBase64String(s);
            return Convert.ToBase64String(b) == s ? b : throw new FormatException($"the {what} is not canonical base64");
        }
        catch (FormatException e) when (!e.Message.Contains("canonical", StringComparison.Ordinal))
        {
            throw new FormatException($"the {what} is not base64");
        }
    }
}
