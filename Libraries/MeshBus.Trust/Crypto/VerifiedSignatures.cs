using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace MeshBus.Trust.Crypto;

/// <summary>
/// A bounded memo of Ed25519 signatures that verified. The same public key, message and signature verify the same way
/// every time, so a repeat (an agent's credential, carried by each of its intents) skips the curve arithmetic. Only
/// successes are remembered, and a hit is compared byte for byte. Nothing about a key's validity, revocation or the
/// signed claims is remembered: callers still resolve the key and check the claims and times on every use.
/// </summary>
public sealed class VerifiedSignatures
{
    private readonly ConcurrentDictionary<string, Entry> _verified = new(StringComparer.Ordinal);
    private readonly int _capacity;

    /// <summary>Remembers up to <paramref name="capacity"/> signatures (then starts over).</summary>
    /// <param name="capacity">The most signatures remembered at once.</param>
    public VerifiedSignatures(int capacity = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
    }

    /// <summary>The number of signatures remembered now.</summary>
    public int Count => _verified.Count;

    /// <summary>
    /// Whether <paramref name="signature"/> over <paramref name="message"/> verifies with <paramref name="publicKey"/>:
    /// remembered when it verified before, else <see cref="Ed25519Keys.Verify"/>.
    /// </summary>
    /// <param name="publicKey">The raw Ed25519 public key.</param>
    /// <param name="message">The signed bytes.</param>
    /// <param name="signature">The 64-byte signature.</param>
    public bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        var key = Key(publicKey, message, signature);
        if (_verified.TryGetValue(key, out var known) && known.Matches(publicKey, message, signature))
        {
            return true;
        }

        if (!Ed25519Keys.Verify(publicKey, message, signature))
        {
            return false;
        }

        if (_verified.Count >= _capacity)
        {
            _verified.Clear();
        }

        _verified[key] = new Entry(publicKey.ToArray(), message.ToArray(), signature.ToArray());
        return true;
    }

    private static string Key(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        // Length-prefixed parts, so no two different triples hash the same bytes; a hit is still compared in full.
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Append(hash, publicKey);
        Append(hash, message);
        Append(hash, signature);
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    private static void Append(IncrementalHash hash, ReadOnlySpan<byte> part)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, part.Length);
        hash.AppendData(length);
        hash.AppendData(part);
    }

    private sealed record Entry(byte[] PublicKey, byte[] Message, byte[] Signature)
    {
        public bool Matches(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature) =>
            publicKey.SequenceEqual(PublicKey) && message.SequenceEqual(Message) && signature.SequenceEqual(Signature);
    }
}
