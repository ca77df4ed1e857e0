namespace MeshBus.Ledger.Merkle;

/// <summary>Coordinates of a complete subtree: leaves <c>[Index·2^Level, (Index+1)·2^Level)</c>.</summary>
/// <param name="Level">Height above the leaves (0 = a leaf).</param>
/// <param name="Index">Position among the subtrees of that level.</param>
public readonly record struct NodeId(int Level, long Index);

/// <summary>A complete subtree's coordinates and hash.</summary>
/// <param name="Id">Coordinates.</param>
/// <param name="Hash">Its RFC 6962 hash.</param>
public readonly record struct MerkleNode(NodeId Id, byte[] Hash);

/// <summary>
/// The right border of a Merkle tree: one hash per set bit of its size. Appending a leaf yields every complete
/// subtree it closes, which is what a store keeps to answer proofs without rereading leaves.
/// </summary>
public sealed class CompactRange
{
    private readonly List<MerkleNode> _nodes = [];

    /// <summary>An empty range.</summary>
    public CompactRange()
    {
    }

    /// <summary>The range of a tree of <paramref name="size"/> leaves, given its border nodes (see <see cref="BorderOf"/>).</summary>
    public CompactRange(long size, IEnumerable<MerkleNode> border)
    {
        Size = size;
        _nodes.AddRange(border.OrderByDescending(n => n.Id.Level));
        var expected = BorderOf(size);
        if (_nodes.Count != expected.Count || !_nodes.Select(n => n.Id).SequenceEqual(expected))
        {
            throw new ArgumentException($"border nodes do not match a tree of size {size}", nameof(border));
        }
    }

    /// <summary>Number of leaves.</summary>
    public long Size { get; private set; }

    /// <summary>The border nodes, largest first.</summary>
    public IReadOnlyList<MerkleNode> Nodes => _nodes;

    /// <summary>Coordinates of the border of a tree of <paramref name="size"/> leaves, largest subtree first.</summary>
    public static IReadOnlyList<NodeId> BorderOf(long size)
    {
        var ids = new List<NodeId>();
        for (var level = 62; level >= 0; level--)
        {
            if (((size >> level) & 1) == 1)
            {
                ids.Add(new NodeId(level, (size >> level) - 1));
            }
        }

        return ids;
    }

    /// <summary>Appends a leaf hash; adds the complete subtrees it closes (the leaf itself first) to <paramref name="closed"/>.</summary>
    public void Append(byte[] leafHash, List<MerkleNode>? closed = null)
    {
        var node = new MerkleNode(new NodeId(0, Size), leafHash);
        closed?.Add(node);
        while (_nodes.Count > 0 && _nodes[^1].Id.Level == node.Id.Level)
        {
            var left = _nodes[^1];
            _nodes.RemoveAt(_nodes.Count - 1);
            node = new MerkleNode(new NodeId(node.Id.Level + 1, node.Id.Index >> 1), MerkleTree.NodeHash(left.Hash, node.Hash));
            closed?.Add(node);
        }

        _nodes.Add(node);
        Size++;
    }

    /// <summary>The root hash of the tree so far.</summary>
    public byte[] Root()
    {
        if (_nodes.Count == 0)
        {
            return MerkleTree.EmptyRoot();
        }

        var h = _nodes[^1].Hash;
        for (var i = _nodes.Count - 2; i >= 0; i--)
        {
            h = MerkleTree.NodeHash(_nodes[i].Hash, h);
        }

        return h;
    }
}
