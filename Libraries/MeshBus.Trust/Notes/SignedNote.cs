using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace MeshBus.Trust.Notes;

/// <summary>One signature line of a note: <c>— &lt;name&gt; base64(key id || signature)</c>.</summary>
/// <param name="Name">Key name.</param>
/// <param name="KeyId">32-bit key id.</param>
/// <param name="Signature">Signature bytes after the key id.</param>
public sealed record NoteSignature(string Name, uint KeyId, byte[] Signature)
{
    /// <summary>The line as written in a note, without the final newline.</summary>
    public string ToLine()
    {
        var raw = new byte[4 + Signature.Length];
        BinaryPrimitives.WriteUInt32BigEndian(raw, KeyId);
        Signature.CopyTo(raw, 4);
        return $"{SignedNote.SignaturePrefix}{Name} {Convert.ToBase64String(raw)}";
    }
}

/// <summary>A signature that verified against a known key.</summary>
/// <param name="Key">The key.</param>
/// <param name="Timestamp">The cosignature time (type 0x04), or null for plain signatures.</param>
public sealed record VerifiedSignature(VerifierKey Key, DateTimeOffset? Timestamp);

/// <summary>A note whose signatures were checked: the body and which known keys signed it.</summary>
/// <param name="Body">The note text (ends with a newline).</param>
/// <param name="Verified">Known keys whose signature verified.</param>
/// <param name="Signatures">Every signature line of the note, known or not.</param>
public sealed record VerifiedNote(string Body, IReadOnlyList<VerifiedSignature> Verified, IReadOnlyList<NoteSignature> Signatures);

/// <summary>A note that cannot be accepted, with the reason.</summary>
public sealed class NoteVerificationException(string message) : Exception(message);

/// <summary>
/// C2SP signed notes (c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line, and one or more
/// signature lines. Signature lines of unknown keys are ignored; a signature of a known key that does not verify
/// rejects the whole note; at least one known key must have signed.
/// </summary>
public static class SignedNote
{
    /// <summary>The start of a signature line: an em dash and a space.</summary>
    public const string SignaturePrefix = "\u2014 ";

    /// <summary>Most signature lines accepted in one note.</summary>
    public const int MaxSignatures = 100;

    /// <summary>Most bytes accepted in one note.</summary>
    public const int MaxNoteBytes = 1 << 20;

    /// <summary>Signs a body with one or more signers; returns the note text.</summary>
    public static string Sign(string body, params INoteSigner[] signers)
    {
        CheckBody(body);
        if (signers.Length == 0)
        {
            throw new ArgumentException("a note needs at least one signer", nameof(signers));
        }

        var sb = new StringBuilder(body).Append('\n');
        var bytes = Encoding.UTF8.GetBytes(body);
        foreach (var s in signers)
        {
            sb.Append(new NoteSignature(s.Name, s.KeyId, s.Sign(bytes)).ToLine()).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>Adds signature lines (e.g. cosignatures) to a note; lines already present are not repeated.</summary>
    public static string AddSignatures(string note, IEnumerable<string> signatureLines)
    {
        var (body, sigs) = Parse(note);
        var lines = sigs.Select(s => s.ToLine()).ToList();
        foreach (var line in signatureLines)
        {
            var parsed = ParseSignatureLine(line.TrimEnd('\n'));
            var text = parsed.ToLine();
            if (!lines.Contains(text, StringComparer.Ordinal))
            {
                lines.Add(text);
            }
        }

        return body + "\n" + string.Concat(lines.Select(l => l + "\n"));
    }

    /// <summary>Splits a note into its body and signature lines (no verification). Throws <see cref="FormatException"/>.</summary>
    public static (string Body, IReadOnlyList<NoteSignature> Signatures) Parse(string note)
    {
        ArgumentNullException.ThrowIfNull(note);
        if (Encoding.UTF8.GetByteCount(note) > MaxNoteBytes)
        {
            throw new FormatException("the note is too large");
        }

        if (!note.EndsWith('\n'))
        {
            throw new FormatException("a note ends with a newline");
        }

        var split = note.LastIndexOf("\n\n", StringComparison.Ordinal);
        if (split < 0)
        {
            throw new FormatException("a note has a blank line between its text and its signatures");
        }

        var body = note[..(split + 1)];
        CheckBody(body, asFormat: true);
        var lines = note[(split + 2)..^1].Split('\n');
        if (lines.Length > MaxSignatures)
        {
            throw new FormatException("too many signatures");
        }

        return (body, lines.Select(ParseSignatureLine).ToList());
    }

    /// <summary>Parses one signature line (<c>— name base64</c>).</summary>
    public static NoteSignature ParseSignatureLine(string line)
    {
        if (!line.StartsWith(SignaturePrefix, StringComparison.Ordinal))
        {
            throw new FormatException("a signature line starts with an em dash and a space");
        }

        var rest = line[SignaturePrefix.Length..];
        var space = rest.LastIndexOf(' ');
        if (space <= 0)
        {
            throw new FormatException("a signature line is '— <name> <base64>'");
        }

        var name = rest[..space];
        if (name.Any(c => char.IsWhiteSpace(c) || c == '+'))
        {
            throw new FormatException($"invalid key name '{name}'");
        }

        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(rest[(space + 1)..]);
        }
        catch (FormatException)
        {
            throw new FormatException("a signature is not standard base64");
        }

        if (raw.Length < 5 || Convert.ToBase64String(raw) != rest[(space + 1)..])
        {
            throw new FormatException("a signature is too short or not canonical base64");
        }

        return new NoteSignature(name, BinaryPrimitives.ReadUInt32BigEndian(raw), raw[4..]);
    }

    /// <summary>
    /// Verifies a note against known keys. Unknown signers are ignored; a known key whose signature fails rejects
    /// the note; a note no known key signed is rejected. Throws <see cref="NoteVerificationException"/> or
    /// <see cref="FormatException"/>.
    /// </summary>
    public static VerifiedNote Open(string note, IEnumerable<VerifierKey> knownKeys)
    {
        var (body, sigs) = Parse(note);
        var keys = knownKeys.ToList();
        var bytes = Encoding.UTF8.GetBytes(body);
        var verified = new List<VerifiedSignature>();
        foreach (var sig in sigs)
        {
            var key = keys.FirstOrDefault(k => k.Name == sig.Name && k.KeyId == sig.KeyId);
            if (key is null)
            {
                continue;
            }

            if (!TryVerify(key, bytes, sig.Signature, out var timestamp))
            {
                throw new NoteVerificationException($"the signature of known key {key.Name}+{key.KeyIdHex} does not verify");
            }

            if (!verified.Any(v => v.Key.Equals(key)))
            {
                verified.Add(new VerifiedSignature(key, timestamp));
            }
        }

        if (verified.Count == 0)
        {
            throw new NoteVerificationException("no known key signed the note");
        }

        return new VerifiedNote(body, verified, sigs);
    }

    /// <summary>Verifies one signature of a key over a note body (plain Ed25519, or a v1 cosignature for type 0x04).</summary>
    public static bool TryVerify(VerifierKey key, ReadOnlySpan<byte> body, ReadOnlySpan<byte> signature, out DateTimeOffset? timestamp)
    {
        timestamp = null;
        switch (key.SignatureType)
        {
            case VerifierKey.Ed25519Type:
                return Crypto.Ed25519Keys.Verify(key.PublicKey, body, signature);
            case VerifierKey.CosignatureType:
                if (signature.Length != 8 + Crypto.Ed25519Keys.SignatureSize)
                {
                    return false;
                }

                var t = BinaryPrimitives.ReadUInt64BigEndian(signature);
                if (t > long.MaxValue || t > (ulong)DateTimeOffset.MaxValue.ToUnixTimeSeconds())
                {
                    return false;
                }

                if (!Crypto.Ed25519Keys.Verify(key.PublicKey, CosignatureSigner.Message(t, body), signature[8..]))
                {
                    return false;
                }

                timestamp = DateTimeOffset.FromUnixTimeSeconds((long)t);
                return true;
            default:
                return false;
        }
    }

    private static void CheckBody(string body, bool asFormat = false)
    {
        string? problem = null;
        if (string.IsNullOrEmpty(body) || !body.EndsWith('\n'))
        {
            problem = "a note text is non-empty and ends with a newline";
        }
        else if (body.Any(c => c != '\n' && char.IsControl(c)))
        {
            problem = "a note text has no control characters but newlines";
        }

        if (problem is not null)
        {
            throw asFormat ? new FormatException(problem) : new ArgumentException(problem, nameof(body));
        }
    }
}

/// <summary>Signs note bodies under a key name.</summary>
public interface INoteSigner
{
    /// <summary>The key name.</summary>
    string Name { get; }

    /// <summary>The key id (of the verifier key).</summary>
    uint KeyId { get; }

    /// <summary>The verifier key that checks this signer's signatures.</summary>
    VerifierKey VerifierKey { get; }

    /// <summary>The signature bytes (after the key id) over a note body.</summary>
    byte[] Sign(ReadOnlySpan<byte> body);
}

/// <summary>Plain Ed25519 note signatures (type 0x01): checkpoints signed by a log key.</summary>
public sealed class Ed25519NoteSigner : INoteSigner
{
    private readonly Func<byte[], byte[]> _sign;

    /// <summary>Signs with a working key (usage <c>log</c>) under a key name such as <c>&lt;domain&gt;/lineage</c>.</summary>
    public Ed25519NoteSigner(string name, ISigner signer)
        : this(name, signer.PublicKey, data => signer.Sign(data))
    {
    }

    /// <summary>Signs with a raw private seed.</summary>
    public Ed25519NoteSigner(string name, byte[] privateKey)
        : this(name, Crypto.Ed25519Keys.PublicKeyOf(privateKey), data => Crypto.Ed25519Keys.Sign(privateKey, data))
    {
    }

    private Ed25519NoteSigner(string name, byte[] publicKey, Func<byte[], byte[]> sign)
    {
        VerifierKey = VerifierKey.Create(name, publicKey);
        _sign = sign;
    }

    /// <inheritdoc/>
    public string Name => VerifierKey.Name;

    /// <inheritdoc/>
    public uint KeyId => VerifierKey.KeyId;

    /// <inheritdoc/>
    public VerifierKey VerifierKey { get; }

    /// <inheritdoc/>
    public byte[] Sign(ReadOnlySpan<byte> body) => _sign(body.ToArray());
}

/// <summary>
/// Witness cosignatures (c2sp.org/tlog-cosignature, Ed25519 type 0x04): the signature is a big-endian u64 POSIX
/// timestamp followed by an Ed25519 signature over <c>cosignature/v1\ntime &lt;t&gt;\n</c> and the checkpoint body.
/// </summary>
public sealed class CosignatureSigner : INoteSigner
{
    private readonly Func<byte[], byte[]> _sign;
    private readonly TimeProvider _time;

    /// <summary>Cosigns with a working key (usage <c>witness</c>) under a name such as <c>&lt;domain&gt;/witness</c>.</summary>
    public CosignatureSigner(string name, ISigner signer, TimeProvider? time = null)
        : this(name, signer.PublicKey, data => signer.Sign(data), time)
    {
    }

    /// <summary>Cosigns with a raw private seed.</summary>
    public CosignatureSigner(string name, byte[] privateKey, TimeProvider? time = null)
        : this(name, Crypto.Ed25519Keys.PublicKeyOf(privateKey), data => Crypto.Ed25519Keys.Sign(privateKey, data), time)
    {
    }

    private CosignatureSigner(string name, byte[] publicKey, Func<byte[], byte[]> sign, TimeProvider? time)
    {
        VerifierKey = VerifierKey.Create(name, publicKey, VerifierKey.CosignatureType);
        _sign = sign;
        _time = time ?? TimeProvider.System;
    }

    /// <inheritdoc/>
    public string Name => VerifierKey.Name;

    /// <inheritdoc/>
    public uint KeyId => VerifierKey.KeyId;

    /// <inheritdoc/>
    public VerifierKey VerifierKey { get; }

    /// <summary>The message a v1 cosignature signs.</summary>
    public static byte[] Message(ulong timestamp, ReadOnlySpan<byte> body)
    {
        var header = Encoding.ASCII.GetBytes("cosignature/v1\ntime " + timestamp.ToString(CultureInfo.InvariantCulture) + "\n");
        var msg = new byte[header.Length + body.Length];
        header.CopyTo(msg, 0);
        body.CopyTo(msg.AsSpan(header.Length));
        return msg;
    }

    /// <inheritdoc/>
    public byte[] Sign(ReadOnlySpan<byte> body)
    {
        var t = (ulong)_time.GetUtcNow().ToUnixTimeSeconds();
        var sig = _sign(Message(t, body));
        var raw = new byte[8 + sig.Length];
        BinaryPrimitives.WriteUInt64BigEndian(raw, t);
        sig.CopyTo(raw, 8);
        return raw;
    }

    /// <summary>The cosignature line (<c>— name base64</c>) of a note body.</summary>
    public string CosignLine(string body) => new NoteSignature(Name, KeyId, Sign(Encoding.UTF8.GetBytes(body))).ToLine();
}
