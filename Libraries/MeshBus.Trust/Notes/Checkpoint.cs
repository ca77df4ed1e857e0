using System.Globalization;

namespace MeshBus.Trust.Notes;

/// <summary>
/// The body of a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): origin line, decimal tree size, base64 root hash,
/// then optional extension lines.
/// </summary>
/// <param name="Origin">The log's origin, e.g. <c>acme.example/prod/lineage</c>.</param>
/// <param name="Size">Tree size.</param>
/// <param name="RootHash">32-byte root hash.</param>
/// <param name="Extensions">Extension lines (rarely used).</param>
public sealed record Checkpoint(string Origin, long Size, byte[] RootHash, IReadOnlyList<string> Extensions)
{
    /// <summary>A checkpoint without extension lines.</summary>
    public Checkpoint(string origin, long size, byte[] rootHash)
        : this(origin, size, rootHash, [])
    {
    }

    /// <summary>The note body.</summary>
    public string ToBody() =>
        $"{Origin}\n{Size.ToString(CultureInfo.InvariantCulture)}\n{Convert.ToBase64String(RootHash)}\n" + string.Concat(Extensions.Select(e => e + "\n"));

    /// <summary>Parses a checkpoint body strictly. Throws <see cref="FormatException"/> with the reason.</summary>
    public static Checkpoint Parse(string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (!body.EndsWith('\n'))
        {
            throw new FormatException("a checkpoint body ends with a newline");
        }

        var lines = body[..^1].Split('\n');
        if (lines.Length < 3 || lines[0].Length == 0)
        {
            throw new FormatException("a checkpoint has an origin, a size and a root hash line");
        }

        var sizeText = lines[1];
        if (sizeText.Length == 0 || (sizeText.Length > 1 && sizeText[0] == '0') || !sizeText.All(char.IsAsciiDigit)
            || !long.TryParse(sizeText, NumberStyles.None, CultureInfo.InvariantCulture, out var size))
        {
            throw new FormatException($"the checkpoint size '{sizeText}' is not a decimal without leading zeros");
        }

        byte[] root;
        try
        {
            root = Convert.FromBase64String(lines[2]);
        }
        catch (FormatException)
        {
            throw new FormatException("the checkpoint root hash is not base64");
        }

        if (root.Length != 32 || Convert.ToBase64String(root) != lines[2])
        {
            throw new FormatException("the checkpoint root hash is not 32 bytes of canonical base64");
        }

        if (lines.Skip(3).Any(l => l.Length == 0))
        {
            throw new FormatException("a checkpoint extension line is empty");
        }

        return new Checkpoint(lines[0], size, root, lines.Skip(3).ToList());
    }
}
