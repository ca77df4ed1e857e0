using System.Text.Json;
using MeshBus.Ledger.Merkle;

namespace MeshBus.Ledger.Tests;

/// <summary>RFC 6962 proof vectors from transparency-dev/merkle (testdata/, Apache-2.0; TestData/tlog/LICENSE).</summary>
public sealed class VectorTests
{
    private static string Root => Path.Combine(AppContext.BaseDirectory, "TestData", "tlog");

    public static TheoryData<string> InclusionFiles() => Files("inclusion");

    public static TheoryData<string> ConsistencyFiles() => Files("consistency");

    private static TheoryData<string> Files(string kind)
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(Path.Combine(Root, kind), "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(Root, f));
        }

        return data;
    }

    [Fact]
    public void A_proof_to_another_root_says_which_root_was_expected_and_which_was_calculated()
    {
        var leaves = Enumerable.Range(0, 5).Select(i => new[] { (byte)i }).ToList();
        var root = MerkleTree.RootOf(leaves);
        var nodes = NodesOf(leaves);
        var proof = ProofBuilder.Inclusion(2, 5, id => nodes[id]);
        var other = MerkleTree.LeafHash([42]);

        var result = MerkleTree.VerifyInclusion(MerkleTree.LeafHash(leaves[2]), 2, 5, proof, other);

        Assert.Equal(MerkleProofFailure.RootMismatch, result.Failure);
        Assert.Equal(other, result.ExpectedRoot);
        Assert.Equal(root, result.CalculatedRoot);
        Assert.Contains(Convert.ToHexStringLower(other), result.Detail, StringComparison.Ordinal);
        Assert.Equal(MerkleProofFailure.WrongProofSize, MerkleTree.VerifyInclusion(MerkleTree.LeafHash(leaves[2]), 2, 5, proof.Take(1).ToList(), root).Failure);
        Assert.Equal(MerkleProofFailure.InvalidInput, MerkleTree.VerifyInclusion(MerkleTree.LeafHash(leaves[2]), 7, 5, proof, root).Failure);
        Assert.True(MerkleTree.VerifyInclusion(MerkleTree.LeafHash(leaves[2]), 2, 5, proof, root).IsValid);
    }

    [Fact]
    public void Every_vector_directory_is_found() =>
        Assert.True(InclusionFiles().Count + ConsistencyFiles().Count > 150);

    [Theory]
    [MemberData(nameof(InclusionFiles))]
    public void Inclusion_vector_verifies_or_is_rejected_as_expected(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, file)));
        var v = doc.RootElement;
        var ok = MerkleTree.VerifyInclusion(
            Bytes(v, "leafHash"),
            Int(v, "leafIdx"),
            Int(v, "treeSize"),
            Proof(v),
            Bytes(v, "root"));
        Assert.Equal(!v.GetProperty("wantErr").GetBoolean(), ok.IsValid);
    }

    [Theory]
    [MemberData(nameof(ConsistencyFiles))]
    public void Consistency_vector_verifies_or_is_rejected_as_expected(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, file)));
        var v = doc.RootElement;
        var ok = MerkleTree.VerifyConsistency(
            Int(v, "size1"),
            Int(v, "size2"),
            Bytes(v, "root1"),
            Bytes(v, "root2"),
            Proof(v));
        Assert.Equal(!v.GetProperty("wantErr").GetBoolean(), ok.IsValid);
    }

    [Fact]
    public void Generated_proofs_match_the_vectors_tree()
    {
        // The vectors' tree: leaves are the RFC 6962 test inputs; the happy path of inclusion/1 is leaf 0 of 8.
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "inclusion", "1", "happy-path.json")));
        var v = doc.RootElement;
        byte[][] leaves =
        [
            [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
            [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57], [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
        ];
        Assert.Equal(Bytes(v, "root"), MerkleTree.RootOf(leaves));
        var nodes = NodesOf(leaves);
        var proof = ProofBuilder.Inclusion(0, 8, id => nodes[id]);
        Assert.Equal(Proof(v).Select(Convert.ToBase64String), proof.Select(Convert.ToBase64String));
    }

    [Fact]
    public void Generated_proofs_verify_for_every_index_and_size_pair_up_to_40()
    {
        var leaves = Enumerable.Range(0, 40).Select(i => BitConverter.GetBytes(i)).ToList();
        var nodes = NodesOf(leaves);
        for (var size = 1; size <= leaves.Count; size++)
        {
            var root = MerkleTree.RootOf(leaves.Take(size).ToList());
            Assert.Equal(root, ProofBuilder.RangeHash(0, size, id => nodes[id]));
            for (var i = 0; i < size; i++)
            {
                var p = ProofBuilder.Inclusion(i, size, id => nodes[id]);
                Assert.True(MerkleTree.VerifyInclusion(MerkleTree.LeafHash(leaves[i]), i, size, p, root).IsValid, $"inclusion {i} of {size}");
                Assert.False(MerkleTree.VerifyInclusion(MerkleTree.LeafHash(leaves[(i + 1) % size]), i, size, p, root).IsValid && size > 1);
            }

            for (var old = 1; old <= size; old++)
            {
                var p = ProofBuilder.Consistency(old, size, id => nodes[id]);
                var oldRoot = MerkleTree.RootOf(leaves.Take(old).ToList());
                Assert.True(MerkleTree.VerifyConsistency(old, size, oldRoot, root, p).IsValid, $"consistency {old} to {size}");
                if (old < size)
                {
                    Assert.False(MerkleTree.VerifyConsistency(old, size, MerkleTree.LeafHash([9]), root, p).IsValid);
                }
            }
        }
    }

    private static Dictionary<NodeId, byte[]> NodesOf(IReadOnlyList<byte[]> leaves)
    {
        var range = new CompactRange();
        var closed = new List<MerkleNode>();
        foreach (var l in leaves)
        {
            range.Append(MerkleTree.LeafHash(l), closed);
        }

        return closed.ToDictionary(n => n.Id, n => n.Hash);
    }

    // Vectors hold uint64 values; one past long.MaxValue cannot be an index or size of ours, so it maps to -1 (invalid).
    private static long Int(JsonElement v, string name) => v.GetProperty(name).TryGetInt64(out var n) ? n : -1;

    private static byte[] Bytes(JsonElement v, string name) =>
        v.GetProperty(name).ValueKind == JsonValueKind.Null ? [] : v.GetProperty(name).GetBytesFromBase64();

    private static List<byte[]> Proof(JsonElement v) =>
        v.GetProperty("proof").ValueKind == JsonValueKind.Null ? [] : v.GetProperty("proof").EnumerateArray().Select(p => p.GetBytesFromBase64()).ToList();
}
