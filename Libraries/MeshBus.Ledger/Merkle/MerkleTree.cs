using System.Numerics;
using System.Security.Cryptography;

namespace MeshBus.Ledger.Merkle;

/// <summary>RFC 6962 / RFC 9162 Merkle tree hashing and proof verification (SHA-256).</summary>
public static class MerkleTree
{
    /// <summary>Length of every hash.</summary>
    public const int HashSize = 32;

    /// <summary>The root of the empty tree: SHA-256 of the empty string.</summary>
    public static byte[] EmptyRoot() => SHA256.HashData([]);

    /// <summary>Leaf hash: SHA-256(0x00 || data).</summary>
    public static byte[] LeafHash(ReadOnlySpan<byte> data)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData([0x00]);
        h.AppendData(data);
        return h.GetHashAndReset();
    }

    /// <summary>Interior node hash: SHA-256(0x01 || left || right).</summary>
    public static byte[] NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        Span<byte> buf = stackalloc byte[1 + (2 * HashSize)];
        buf[0] = 0x01;
        left.CopyTo(buf[1..]);
        right.CopyTo(buf[(1 + HashSize)..]);
        return SHA256.HashData(buf);
    }

    /// <summary>The root of a whole list of leaf data (for tests and audits of small logs).</summary>
    public static byte[] RootOf(IReadOnlyList<byte[]> leaves)
    {
        var range = new CompactRange();
        foreach (var l in leaves)
        {
            range.Append(LeafHash(l));
        }

        return range.Root();
    }

    /// <summary>
    /// Verifies an inclusion proof (RFC 9162 §2.1.3.2). Says why it fails: malformed input (sizes, hash lengths), a
    /// proof of the wrong length, or a root that is not the expected one (with both roots, as transparency-dev/merkle's
    /// <c>RootMismatchError</c>).
    /// </summary>
    public static MerkleProofResult VerifyInclusion(ReadOnlySpan<byte> leafHash, long index, long treeSize, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root)
    {
        if (index < 0 || treeSize <= 0 || index >= treeSize)
        {
            return MerkleProofResult.Fail(MerkleProofFailure.InvalidInput, $"index {index} is not in a tree of size {treeSize}");
        }

        if (leafHash.Length != HashSize || root.Length != HashSize)
        {
            return MerkleProofResult.Fail(MerkleProofFailure.InvalidInput, $"leaf hash and root must be {HashSize} bytes");
        }

        var computed = RootFromInclusionProof(leafHash, index, treeSize, proof);
        if (computed is null)
        {
            return MerkleProofResult.Fail(MerkleProofFailure.WrongProofSize, $"the proof of {proof.Count} hashes has the wrong shape for index {index} of {treeSize}");
        }

        return CryptographicOperations.FixedTimeEquals(computed, root) ? MerkleProofResult.Valid : MerkleProofResult.Mismatch(root.ToArray(), computed);
    }

    /// <summary>The root implied by an inclusion proof, or null when the proof has the wrong shape.</summary>
    public static byte[]? RootFromInclusionProof(ReadOnlySpan<byte> leafHash, long index, long treeSize, IReadOnlyList<byte[]> proof)
    {
        if (index < 0 || treeSize <= 0 || index >= treeSize || leafHash.Length != HashSize)
        {
            return null;
        }

        // Split the proof into the part below the right border of the tree (inner) and the border part.
        var inner = 64 - BitOperations.LeadingZeroCount((ulong)(index ^ (treeSize - 1)));
        var border = BitOperations.PopCount((ulong)index >> inner);
        if (proof.Count != inner + border || proof.Any(p => p is null || p.Length != HashSize))
        {
            return null;
        }

        var h = leafHash.ToArray();
        for (var i = 0; i < inner; i++)
        {
            h = ((index >> i) & 1) == 0 ? NodeHash(h, proof[i]) : NodeHash(proof[i], h);
        }

        for (var i = inner; i < proof.Count; i++)
        {
            h = NodeHash(proof[i], h);
        }

        return h;
    }

    /// <summary>Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2), saying why it fails.</summary>
    public static MerkleProofResult VerifyConsistency(long size1, long size2, ReadOnlySpan<byte> root1, ReadOnlySpan<byte> root2, IReadOnlyList<byte[]> proof)
    {
        if (size1 < 0 || size2 < size1)
        {
            return MerkleProofResult.Fail(MerkleProofFailure.InvalidInput, $"sizes {size1} and {size2} are not an old and a new tree");
        }

        if (size1 == size2)
        {
            // Same tree: the proof must be empty and the roots equal (whatever their encoding).
            // The empty tree has exactly one root.
            if (proof.Count != 0)
            {
                return MerkleProofResult.Fail(MerkleProofFailure.WrongProofSize, "a proof between two trees of the same size must be empty");
            }

            return root1.SequenceEqual(root2) && (size1 > 0 || root1.SequenceEqual(EmptyRoot()))
                ? MerkleProofResult.Valid
                : MerkleProofResult.Mismatch(root1.ToArray(), root2.ToArray());
        }

        if (root1.Length != HashSize || root2.Length != HashSize || proof.Any(p => p is null || p.Length != HashSize))
        {
            return MerkleProofResult.Fail(MerkleProofFailure.InvalidInput, $"roots and proof hashes must be {HashSize} bytes");
        }

        if (size1 == 0)
        {
            // Every tree is consistent with the empty one; a proof is meaningless and refused.
            return MerkleProofResult.Fail(MerkleProofFailure.InvalidInput, "no proof is needed (or accepted) from the empty tree");
        }

        if (proof.Count == 0)
        {
            return MerkleProofResult.Fail(MerkleProofFailure.WrongProofSize, $"a proof from size {size1} to {size2} cannot be empty");
        }

        // Build the path with the old root in front when size1 is a power of two (RFC 9162 step 1).
        var path = new List<byte[]>(proof.Count + 1);
        if ((size1 & (size1 - 1)) == 0)
        {
            path.Add(root1.ToArray());
        }

        path.AddRange(proof);
        var fn = size1 - 1;
        var sn = size2 - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        var fr = path[0];
        var sr = path[0];
        for (var i = 1; i < path.Count; i++)
        {
            if (sn == 0)
            {
                return MerkleProofResult.Fail(MerkleProofFailure.WrongProofSize, $"the proof of {proof.Count} hashes is too long for sizes {size1} and {size2}");
            }

            var c = path[i];
            if ((fn & 1) == 1 || fn == sn)
            {
                fr = NodeHash(c, fr);
                sr = NodeHash(c, sr);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                sr = NodeHash(sr, c);
            }

            fn >>= 1;
            sn >>= 1;
        }

        if (sn != 0)
        {
            return MerkleProofResult.Fail(MerkleProofFailure.WrongProofSize, $"the proof of {proof.Count} hashes is too short for sizes {size1} and {size2}");
        }

        if (!CryptographicOperations.FixedTimeEquals(fr, root1))
        {
            return MerkleProofResult.Mismatch(root1.ToArray(), fr);
        }

        return CryptographicOperations.FixedTimeEquals(sr, root2) ? MerkleProofResult.Valid : MerkleProofResult.Mismatch(root2.ToArray(), sr);
    }
}
