using System.Numerics;

namespace MeshBus.Ledger.Merkle;

/// <summary>
/// Builds RFC 6962 inclusion and consistency proofs from stored complete-subtree hashes. Each proof is first planned
/// (which nodes it needs, so a store reads them in one query) and then computed from those nodes.
/// </summary>
public static class ProofBuilder
{
    /// <summary>The complete subtrees an inclusion proof needs.</summary>
    public static IReadOnlyCollection<NodeId> InclusionNodes(long index, long treeSize)
    {
        CheckInclusion(index, treeSize);
        var needed = new HashSet<NodeId>();
        Path(index, 0, treeSize, id =>
        {
            needed.Add(id);
            return Zero;
        });
        return needed;
    }

    /// <summary>The inclusion proof of <paramref name="index"/> in the tree of <paramref name="treeSize"/>, leaf's sibling first.</summary>
    public static IReadOnlyList<byte[]> Inclusion(long index, long treeSize, Func<NodeId, byte[]> node)
    {
        CheckInclusion(index, treeSize);
        return Path(index, 0, treeSize, node);
    }

    /// <summary>The complete subtrees a consistency proof needs.</summary>
    public static IReadOnlyCollection<NodeId> ConsistencyNodes(long oldSize, long newSize)
    {
        CheckConsistency(oldSize, newSize);
        var needed = new HashSet<NodeId>();
        _ = oldSize == newSize ? [] : SubProof(oldSize, 0, newSize, true, id =>
        {
            needed.Add(id);
            return Zero;
        });
        return needed;
    }

    /// <summary>The consistency proof from <paramref name="oldSize"/> to <paramref name="newSize"/> (empty when equal).</summary>
    public static IReadOnlyList<byte[]> Consistency(long oldSize, long newSize, Func<NodeId, byte[]> node)
    {
        CheckConsistency(oldSize, newSize);
        return oldSize == newSize ? [] : SubProof(oldSize, 0, newSize, true, node);
    }

    /// <summary>The complete subtrees needed for the root of a tree of <paramref name="size"/> leaves.</summary>
    public static IReadOnlyList<NodeId> RootNodes(long size) => CompactRange.BorderOf(size);

    /// <summary>The hash of leaves <c>[start, end)</c>, where <paramref name="start"/> is aligned as RFC 6962 splits it.</summary>
    public static byte[] RangeHash(long start, long end, Func<NodeId, byte[]> node)
    {
        var n = end - start;
        if (BitOperations.IsPow2(n))
        {
            var level = BitOperations.Log2((ulong)n);
            return node(new NodeId(level, start >> level));
        }

        var k = LargestPowerOfTwoBelow(n);
        return MerkleTree.NodeHash(RangeHash(start, start + k, node), RangeHash(start + k, end, node));
    }

    private static readonly byte[] Zero = new byte[MerkleTree.HashSize];

    private static List<byte[]> Path(long m, long start, long end, Func<NodeId, byte[]> node)
    {
        var n = end - start;
        if (n == 1)
        {
            return [];
        }

        var k = LargestPowerOfTwoBelow(n);
        List<byte[]> path;
        if (m < start + k)
        {
            path = Path(m, start, start + k, node);
            path.Add(RangeHash(start + k, end, node));
        }
        else
        {
            path = Path(m, start + k, end, node);
            path.Add(RangeHash(start, start + k, node));
        }

        return path;
    }

    private static List<byte[]> SubProof(long m, long start, long end, bool whole, Func<NodeId, byte[]> node)
    {
        var n = end - start;
        if (m == n)
        {
            return whole ? [] : [RangeHash(start, end, node)];
        }

        var k = LargestPowerOfTwoBelow(n);
        List<byte[]> proof;
        if (m <= k)
        {
            proof = SubProof(m, start, start + k, whole, node);
            proof.Add(RangeHash(start + k, end, node));
        }
        else
        {
            proof = SubProof(m - k, start + k, end, false, node);
            proof.Add(RangeHash(start, start + k, node));
        }

        return proof;
    }

    private static long LargestPowerOfTwoBelow(long n) => 1L << BitOperations.Log2((ulong)(n - 1));

    private static void CheckInclusion(long index, long treeSize)
    {
        if (treeSize <= 0 || index < 0 || index >= treeSize)
        {
            throw new ArgumentOutOfRangeException(nameof(index), $"no leaf {index} in a tree of size {treeSize}");
        }
    }

    private static void CheckConsistency(long oldSize, long newSize)
    {
        if (oldSize <= 0 || newSize < oldSize)
        {
            throw new ArgumentOutOfRangeException(nameof(oldSize), $"no consistency proof from size {oldSize} to {newSize} (need 0 < old <= new)");
        }
    }
}
