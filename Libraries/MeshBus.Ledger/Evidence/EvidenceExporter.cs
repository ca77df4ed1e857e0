using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Ledger.Decisions;
using MeshBus.Trust;
using MeshBus.Trust.Notes;

namespace MeshBus.Ledger.Evidence;

/// <summary>Assembles the evidence bundle of an intent from one domain's lineage log.</summary>
public static class EvidenceExporter
{
    /// <summary>
    /// Builds the bundle: every record of the intent with an inclusion proof in the latest checkpoint (a new one is
    /// signed when the latest does not cover them), its stored cosignatures, and the keys a verifier needs.
    /// </summary>
    /// <param name="log">The domain's log.</param>
    /// <param name="publisher">Signs a covering checkpoint when needed; its signer is the log key.</param>
    /// <param name="logKey">The log's verifier key (of the publisher's signer).</param>
    /// <param name="intentId">The intent.</param>
    /// <param name="witnessKeys">Known witness keys (type 0x04); those that cosigned the checkpoint go into the bundle.</param>
    /// <param name="jwks">The JWKS of the domain's grant keys, or null.</param>
    /// <param name="grant">The grant; when null it is rebuilt from the intent's first decision record (see <see cref="RecordedGrant"/>).</param>
    /// <param name="grantSignerAt">The domain's grant key that was current at a moment (the lease's <c>iat</c>), to rebuild
    /// the grant when none is given; null (or a null key): no grant in the bundle.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <param name="at">The checkpoint to prove against (it must cover the records), instead of the latest.</param>
    public static async Task<EvidenceBundle> ExportAsync(
        SqlLineageLog log,
        CheckpointPublisher publisher,
        VerifierKey logKey,
        string intentId,
        IEnumerable<VerifierKey> witnessKeys,
        JsonObject? jwks,
        string? grant = null,
        Func<DateTimeOffset, ISigner?>? grantSignerAt = null,
        CancellationToken cancellationToken = default,
        StoredCheckpoint? at = null)
    {
        var all = await log.FindAsync(intentId, cancellationToken);
        // Evidence received from peers is nested as their own parts, not as records of this log.
        var records = all.Where(r => r.Type != PeerEvidence.Type).ToList();
        if (records.Count == 0)
        {
            throw new InvalidOperationException($"the lineage log has no records of intent {intentId}");
        }

        var checkpoint = at ?? await log.GetLatestCheckpointAsync(cancellationToken);
        if (checkpoint is null || checkpoint.Size <= records.Max(r => r.Index))
        {
            checkpoint = await publisher.PublishAsync(cancellationToken);
        }

        var cosignatures = await log.GetCosignaturesAsync(checkpoint.Size, cancellationToken);
        var note = cosignatures.Count > 0 ? SignedNote.AddSignatures(checkpoint.Note, cosignatures) : checkpoint.Note;
        var signers = SignedNote.Parse(note).Signatures;
        var witnesses = witnessKeys
            .Where(w => signers.Any(s => s.Name == w.Name && s.KeyId == w.KeyId))
            .ToDictionary(w => w.Name, w => w.ToString(), StringComparer.Ordinal);

        var bundleRecords = new List<EvidenceRecord>();
        foreach (var r in records)
        {
            var proof = await log.GetInclusionProofAsync(r.Index, checkpoint.Size, cancellationToken);
            bundleRecords.Add(new EvidenceRecord(r.Type, r.Index, r.Data, new TlogProof(r.Index, proof, note).ToString()));
        }

        grant ??= grantSignerAt is null ? null : RecordedGrant(records, grantSignerAt);
        return new EvidenceBundle(
            intentId,
            grant,
            bundleRecords,
            new Dictionary<string, string>(StringComparer.Ordinal) { [publisher.Origin] = logKey.ToString() },
            witnesses,
            jwks)
        {
            Peers = PeerEvidence.Latest(all),
        };
    }

    /// <summary>
    /// The grant released for an intent, rebuilt from its first decision record (<see cref="DecisionRecord.DecisionType"/>,
    /// renewal 0): the stored lease claims at the record's index, signed with the grant key that was current when the
    /// lease was issued, are the byte-identical grant (Ed25519 is deterministic). Null when the intent was not granted
    /// or that key is not at hand; a bundle's verifier checks the rebuilt grant like any other.
    /// </summary>
    /// <param name="records">The intent's lineage records.</param>
    /// <param name="grantSignerAt">The domain's grant key current at a moment, or null when it is not at hand.</param>
    public static string? RecordedGrant(IEnumerable<LineageRecord> records, Func<DateTimeOffset, ISigner?> grantSignerAt)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(grantSignerAt);
        foreach (var r in records.Where(r => r.Type == DecisionRecord.DecisionType))
        {
            var decision = DecisionRecord.Parse(r.Data);
            if (decision.Renewal == 0 && decision.Allowed && decision.Lease is { } lease)
            {
                var signer = grantSignerAt(DateTimeOffset.FromUnixTimeSeconds(lease.IssuedAt));
                return signer is null ? null : Grants.Issue(lease.ToGrantClaims(r.Index), signer);
            }
        }

        return null;
    }

    /// <summary>The first string property named <paramref name="name"/> (case-insensitive, underscores ignored) anywhere in a JSON leaf.</summary>
    internal static string? FindString(byte[] json, string name)
    {
        try
        {
            return Find(JsonNode.Parse(json), Normalize(name));
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Normalize(string s) => s.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant();

    private static string? Find(JsonNode? node, string name)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o)
                {
                    if (Normalize(k) == name && v is JsonValue sv && sv.TryGetValue<string>(out var s))
                    {
                        return s;
                    }
                }

                foreach (var (_, v) in o)
                {
                    if (Find(v, name) is { } found)
                    {
                        return found;
                    }
                }

                return null;
            case JsonArray a:
                return a.Select(x => Find(x, name)).FirstOrDefault(x => x is not null);
            default:
                return null;
        }
    }
}
