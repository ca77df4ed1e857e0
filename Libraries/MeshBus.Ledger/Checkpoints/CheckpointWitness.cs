using MeshBus.Ledger.Merkle;
using MeshBus.Trust;
using MeshBus.Trust.Notes;

namespace MeshBus.Ledger;

/// <summary>What a witness answered to a cosign request.</summary>
/// <param name="Cosigned">True when it cosigned.</param>
/// <param name="Size">The cosigned size, or the size the witness is at (retry from it).</param>
/// <param name="CosignatureLine">The <c>— name base64</c> line when cosigned.</param>
/// <param name="Detail">Why not, when refused.</param>
/// <param name="Fork">True when the witness holds two validly signed checkpoints of one size with different roots.</param>
public sealed record CosignOutcome(bool Cosigned, long Size, string? CosignatureLine, string? Detail, bool Fork);

/// <summary>
/// The witness side of checkpoint cosigning (c2sp.org/tlog-cosignature): it cosigns a peer log's checkpoint only
/// after verifying the log's signature and a consistency proof from the last checkpoint it cosigned, and it moves
/// its state forward only by compare-and-swap, so two witness replicas never cosign diverging heads.
/// </summary>
public sealed class CheckpointWitness(IWitnessStateStore state, CosignatureSigner cosigner)
{
    /// <summary>Handles <c>CosignRequest{checkpoint, oldSize, consistencyProof}</c> for a log whose keys are <paramref name="logKeys"/>.</summary>
    public async Task<CosignOutcome> CosignAsync(string origin, string checkpointNote, long oldSize, IReadOnlyList<byte[]> consistencyProof, IEnumerable<VerifierKey> logKeys, CancellationToken cancellationToken = default)
    {
        var current = await state.GetWitnessStateAsync(origin, cancellationToken);
        var at = current?.Size ?? 0;
        Checkpoint cp;
        try
        {
            (cp, _) = Checkpoints.Open(checkpointNote, origin, logKeys);
        }
        catch (Exception e) when (e is NoteVerificationException or FormatException)
        {
            return new CosignOutcome(false, at, null, "checkpoint refused: " + e.Message, false);
        }

        if (current is not null && cp.Size == current.Size)
        {
            return cp.RootHash.AsSpan().SequenceEqual(current.RootHash)
                ? new CosignOutcome(true, cp.Size, cosigner.CosignLine(cp.ToBody()), null, false)
                : new CosignOutcome(false, at, null, $"fork: two signed checkpoints of size {cp.Size} with different roots", true);
        }

        if (oldSize != at)
        {
            return new CosignOutcome(false, at, null, $"the witness is at size {at}, not {oldSize}", false);
        }

        if (current is not null)
        {
            if (cp.Size < current.Size)
            {
                return new CosignOutcome(false, at, null, $"checkpoint size {cp.Size} is older than the cosigned {current.Size}", false);
            }

            if (MerkleTree.VerifyConsistency(current.Size, cp.Size, current.RootHash, cp.RootHash, consistencyProof) is { IsValid: false } inconsistent)
            {
                // Two validly signed checkpoints with no valid proof between them cannot both be true: a fork.
                return new CosignOutcome(false, at, null, $"fork: no valid consistency proof from the cosigned size {current.Size} to {cp.Size}: {inconsistent.Detail}", true);
            }
        }

        var next = new WitnessState(origin, cp.Size, cp.RootHash, checkpointNote);
        if (!await state.CompareAndSwapWitnessStateAsync(origin, current, next, cancellationToken))
        {
            var now = await state.GetWitnessStateAsync(origin, cancellationToken);
            return new CosignOutcome(false, now?.Size ?? 0, null, "the witness state changed concurrently; retry", false);
        }

        return new CosignOutcome(true, cp.Size, cosigner.CosignLine(cp.ToBody()), null, false);
    }
}
