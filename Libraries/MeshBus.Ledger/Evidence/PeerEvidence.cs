using System.Text.Json;

namespace MeshBus.Ledger.Evidence;

/// <summary>
/// A peer domain's evidence bundle of an intent, as this domain received it (<c>ProofResponse</c>) and recorded it in
/// its own log: lineage type <c>PeerEvidence</c>, key <c>peer-evidence:&lt;intentId&gt;:&lt;domain&gt;:&lt;n&gt;</c>,
/// leaf the canonical JSON of <c>{domain, evidence, intentId}</c>. Exports nest the latest one per domain as a peer part.
/// </summary>
public static class PeerEvidence
{
    /// <summary>The lineage type.</summary>
    public const string Type = "PeerEvidence";

    /// <summary>The lineage key of the <paramref name="sequence"/>-th bundle of <paramref name="domain"/> for an intent.</summary>
    public static string Key(string intentId, string domain, long sequence) =>
        $"peer-evidence:{intentId}:{domain}:{sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>The leaf of a received bundle.</summary>
    public static byte[] Leaf(string domain, string intentId, string evidence) =>
        MeshBus.Trust.Canonical.Json(new Document(domain, evidence, intentId));

    /// <summary>The latest stored bundle per peer domain among an intent's records (unreadable ones are skipped).</summary>
    public static IReadOnlyList<EvidenceBundle> Latest(IEnumerable<LineageRecord> records)
    {
        var byDomain = new Dictionary<string, EvidenceBundle>(StringComparer.Ordinal);
        foreach (var r in records.Where(r => r.Type == Type).OrderBy(r => r.Index))
        {
            try
            {
                var doc = JsonSerializer.Deserialize<Document>(r.Data, Json);
                if (doc is not null)
                {
                    byDomain[doc.Domain] = EvidenceBundle.Parse(doc.Evidence);
                }
            }
            catch (Exception e) when (e is JsonException or FormatException)
            {
                // recorded only after verification; a record that no longer parses is left out, and the log audit shows why
            }
        }

        return [.. byDomain.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value)];
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private sealed record Document(string Domain, string Evidence, string IntentId);
}
