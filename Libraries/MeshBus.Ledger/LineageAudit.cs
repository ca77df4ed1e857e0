using MeshBus.Ledger.Merkle;
using MeshBus.Trust;
using MeshBus.Trust.Notes;

namespace MeshBus.Ledger;

/// <summary>One problem found by the audit.</summary>
/// <param name="Index">The entry index concerned, when known.</param>
/// <param name="Message">What is wrong.</param>
public sealed record AuditFinding(long? Index, string Message);

/// <summary>The result of a full audit.</summary>
/// <param name="Entries">Entries read.</param>
/// <param name="Checkpoints">Checkpoints checked.</param>
/// <param name="Findings">Problems; empty when the log is intact.</param>
public sealed record AuditReport(long Entries, int Checkpoints, IReadOnlyList<AuditFinding> Findings)
{
    /// <summary>True when nothing is wrong.</summary>
    public bool Ok => Findings.Count == 0;
}

/// <summary>
/// Recomputes the whole tree from the stored entries and checks it against every stored Merkle node, the head and
/// every stored checkpoint (and its signature, when the log's keys are given). A changed entry shows as its index.
/// </summary>
public static class LineageAudit
{
    private const int Chunk = 2048;

    /// <summary>Runs the audit.</summary>
    public static async Task<AuditReport> RunAsync(SqlLineageLog log, string? origin = null, IReadOnlyList<VerifierKey>? logKeys = null, CancellationToken cancellationToken = default)
    {
        var findings = new List<AuditFinding>();
        var checkpoints = await log.GetCheckpointsAsync(cancellationToken);
        var pending = new Queue<StoredCheckpoint>(checkpoints);
        foreach (var cp in checkpoints)
        {
            try
            {
                var body = SignedNote.Parse(cp.Note).Body;
                var parsed = logKeys is not null && origin is not null ? Checkpoints.Open(cp.Note, origin, logKeys).Checkpoint : Checkpoint.Parse(body);
                if (parsed.Size != cp.Size || !parsed.RootHash.AsSpan().SequenceEqual(cp.RootHash))
                {
                    findings.Add(new AuditFinding(null, $"checkpoint at size {cp.Size}: the signed note says size {parsed.Size} root {Convert.ToBase64String(parsed.RootHash)}, the row says {Convert.ToBase64String(cp.RootHash)}"));
                }
            }
            catch (Exception e) when (e is FormatException or NoteVerificationException)
            {
                findings.Add(new AuditFinding(null, $"checkpoint at size {cp.Size}: {e.Message}"));
            }
        }

        var range = new CompactRange();
        var closed = new List<MerkleNode>();
        var expected = 0L;
        await foreach (var rec in log.ReadEntriesAsync(0, cancellationToken))
        {
            if (rec.Index != expected)
            {
                findings.Add(new AuditFinding(expected, $"entries {expected}..{rec.Index - 1} are missing"));
                break;
            }

            range.Append(MerkleTree.LeafHash(rec.Data), closed);
            expected++;
            while (pending.Count > 0 && pending.Peek().Size == range.Size)
            {
                var cp = pending.Dequeue();
                if (!range.Root().AsSpan().SequenceEqual(cp.RootHash))
                {
                    findings.Add(new AuditFinding(null, $"checkpoint at size {cp.Size}: the recomputed root differs: an entry below {cp.Size} was changed"));
                }
            }

            if (closed.Count >= Chunk)
            {
                await CompareAsync(log, closed, findings, cancellationToken);
            }
        }

        await CompareAsync(log, closed, findings, cancellationToken);
        foreach (var cp in pending)
        {
            findings.Add(new AuditFinding(null, $"checkpoint at size {cp.Size} is beyond the {range.Size} entries stored: the log was truncated"));
        }

        var head = await log.GetTreeHeadAsync(cancellationToken);
        if (head.Size != range.Size || !head.RootHash.AsSpan().SequenceEqual(range.Root()))
        {
            findings.Add(new AuditFinding(null, $"the stored head (size {head.Size}) differs from the recomputed tree (size {range.Size})"));
        }

        return new AuditReport(range.Size, checkpoints.Count, findings);
    }

    private static async Task CompareAsync(SqlLineageLog log, List<MerkleNode> closed, List<AuditFinding> findings, CancellationToken ct)
    {
        if (closed.Count == 0)
        {
            return;
        }

        var stored = await log.Store.ReadNodesAsync(closed.Select(n => n.Id).ToList(), ct);
        foreach (var n in closed)
        {
            if (!stored.TryGetValue(n.Id, out var h))
            {
                findings.Add(new AuditFinding(n.Id.Level == 0 ? n.Id.Index : null, $"Merkle node level {n.Id.Level} index {n.Id.Index} is missing"));
            }
            else if (!h.AsSpan().SequenceEqual(n.Hash))
            {
                findings.Add(n.Id.Level == 0
                    ? new AuditFinding(n.Id.Index, $"entry {n.Id.Index}: its data does not match its stored leaf hash (changed after append)")
                    : new AuditFinding(n.Id.Index << n.Id.Level, $"Merkle node level {n.Id.Level} index {n.Id.Index} (entries from {n.Id.Index << n.Id.Level}) differs from the recomputed one"));
            }
        }

        closed.Clear();
    }
}
