namespace MeshBus.Ledger.Merkle;

/// <summary>Why a Merkle proof did not verify.</summary>
public enum MerkleProofFailure
{
    /// <summary>It verified.</summary>
    None,

    /// <summary>The sizes, indexes or hash lengths cannot describe a proof.</summary>
    InvalidInput,

    /// <summary>The proof has the wrong number of hashes for the sizes.</summary>
    WrongProofSize,

    /// <summary>The proof is well formed but leads to another root than the expected one.</summary>
    RootMismatch,
}

/// <summary>
/// The outcome of verifying an inclusion or consistency proof: valid, or the reason with the detail (for a root
/// mismatch, the expected and the calculated root, as transparency-dev/merkle's <c>RootMismatchError</c>).
/// </summary>
/// <param name="Failure">Why it failed (<see cref="MerkleProofFailure.None"/> when valid).</param>
/// <param name="Detail">What failed, for logs and error messages (empty when valid).</param>
/// <param name="ExpectedRoot">With <see cref="MerkleProofFailure.RootMismatch"/>: the root the proof had to reach.</param>
/// <param name="CalculatedRoot">With <see cref="MerkleProofFailure.RootMismatch"/>: the root the proof reached.</param>
public sealed record MerkleProofResult(MerkleProofFailure Failure, string Detail, byte[]? ExpectedRoot = null, byte[]? CalculatedRoot = null)
{
    /// <summary>A proof that verified.</summary>
    public static MerkleProofResult Valid { get; } = new(MerkleProofFailure.None, "");

    /// <summary>True when the proof verified.</summary>
    public bool IsValid => Failure == MerkleProofFailure.None;

    /// <summary>A failure with its reason.</summary>
    public static MerkleProofResult Fail(MerkleProofFailure failure, string detail) => new(failure, detail);

    /// <summary>A well-formed proof that reaches another root.</summary>
    public static MerkleProofResult Mismatch(byte[] expected, byte[] calculated) => new(
        MerkleProofFailure.RootMismatch,
        $"calculated root {Convert.ToHexStringLower(calculated)} does not match expected root {Convert.ToHexStringLower(expected)}",
        expected,
        calculated);
}
