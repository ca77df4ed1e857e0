using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Ledger.Merkle;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Trust.Notes;

namespace MeshBus.Ledger.Evidence;

/// <summary>One check of an evidence bundle.</summary>
/// <param name="Passed">Whether it passed.</param>
/// <param name="Description">What was checked, and why it failed.</param>
public sealed record EvidenceCheck(bool Passed, string Description);

/// <summary>The outcome of verifying a bundle.</summary>
/// <param name="Checks">Every check, in order.</param>
/// <param name="UntrustedRoots">True when a key in the bundle does not chain to a pinned root.</param>
public sealed record EvidenceReport(IReadOnlyList<EvidenceCheck> Checks, bool UntrustedRoots)
{
    /// <summary>True only when every check passed and every key chains to a pinned root.</summary>
    public bool Ok => !UntrustedRoots && Checks.Count > 0 && Checks.All(c => c.Passed);
}

/// <summary>
/// Verifies a <c>meshbus-evidence/v1</c> bundle offline against pinned roots: keys in the bundle count only when they
/// are in a key set signed by a pinned root; then every checkpoint signature, the k-of-n witness cosignatures, the
/// inclusion of every record, and the grant (signature, intent id, lineage index and intent digest); then every peer
/// part (<see cref="EvidenceBundle.Peers"/>) the same way, against the same pinned roots only.
/// </summary>
public static class EvidenceVerifier
{
    /// <summary>Runs every check.</summary>
    public static EvidenceReport Verify(EvidenceBundle bundle, TrustConfig pinned, int witnessesRequired = 0)
    {
        var checks = new List<EvidenceCheck>();
        var untrusted = false;
        var keySets = new Dictionary<string, KeySet>(pinned.PeerKeySets, StringComparer.Ordinal);
        if (pinned.OwnKeySet is { } own)
        {
            keySets[own.Domain] = own;
        }

        var logKeys = new Dictionary<string, VerifierKey>(StringComparer.Ordinal);
        foreach (var (origin, text) in bundle.Logs)
        {
            var (ok, key, detail) = Chain(text, origin, "/lineage", VerifierKey.Ed25519Type, KeyUsage.Log, keySets);
            checks.Add(new EvidenceCheck(ok, $"log key of {origin} chains to a pinned root{detail}"));
            untrusted |= !ok;
            if (ok)
            {
                logKeys[origin] = key!;
            }
        }

        var witnessKeys = new List<VerifierKey>();
        foreach (var (name, text) in bundle.Witnesses)
        {
            var (ok, key, detail) = Chain(text, name, "/witness", VerifierKey.CosignatureType, KeyUsage.Witness, keySets);
            checks.Add(new EvidenceCheck(ok, $"witness key {name} chains to a pinned root{detail}"));
            untrusted |= !ok;
            if (ok)
            {
                witnessKeys.Add(key!);
            }
        }

        foreach (var (kid, x) in JwksKeys(bundle.Jwks, checks))
        {
            var ok = keySets.Values.Any(s => s.Keys.Any(k => k.KeyId == kid && k.PublicKey == x) && !s.Revoked.Contains(kid, StringComparer.Ordinal));
            checks.Add(new EvidenceCheck(ok, $"JWKS key {kid} chains to a pinned root" + (ok ? "" : ": in no key set signed by a pinned root")));
            untrusted |= !ok;
        }

        if (bundle.Records.Count == 0)
        {
            checks.Add(new EvidenceCheck(false, "the bundle has records: it has none"));
        }

        var included = new List<(EvidenceRecord Record, string Origin)>();
        for (var i = 0; i < bundle.Records.Count; i++)
        {
            var r = bundle.Records[i];
            var label = $"record {i} ({r.Type} @ {r.Index})";
            try
            {
                var proof = TlogProof.Parse(r.Proof);
                var body = SignedNote.Parse(proof.Checkpoint).Body;
                var origin = Checkpoint.Parse(body).Origin;
                if (!logKeys.TryGetValue(origin, out var logKey))
                {
                    checks.Add(new EvidenceCheck(false, $"{label}: checkpoint of {origin} signed by a trusted log key: no trusted key for that origin"));
                    continue;
                }

                var (cp, _) = Checkpoints.Open(proof.Checkpoint, origin, [logKey]);
                checks.Add(new EvidenceCheck(true, $"{label}: checkpoint of {origin} at size {cp.Size} signed by the log key"));
                var cosigned = SignedNote.Open(proof.Checkpoint, [logKey, .. witnessKeys]).Verified.Count(v => v.Key.SignatureType == VerifierKey.CosignatureType);
                if (witnessesRequired > 0)
                {
                    checks.Add(new EvidenceCheck(cosigned >= witnessesRequired, $"{label}: cosigned by {cosigned} of {witnessKeys.Count} trusted witnesses (need {witnessesRequired})"));
                }

                var okIndex = proof.Index == r.Index;
                var inclusion = okIndex ? MerkleTree.VerifyInclusion(MerkleTree.LeafHash(r.Leaf), r.Index, cp.Size, proof.Proof, cp.RootHash) : null;
                var okProof = inclusion is { IsValid: true };
                checks.Add(new EvidenceCheck(okProof, $"{label}: leaf included in {origin} at size {cp.Size}"
                    + (!okIndex ? $": the proof is for index {proof.Index}" : okProof ? "" : ": " + inclusion!.Detail)));
                var leafType = LeafType(r.Leaf);
                if (leafType is not null && leafType != r.Type)
                {
                    checks.Add(new EvidenceCheck(false, $"{label}: the leaf says type {leafType}"));
                }

                if (okProof)
                {
                    included.Add((r, origin));
                }
            }
            catch (Exception e) when (e is FormatException or NoteVerificationException)
            {
                checks.Add(new EvidenceCheck(false, $"{label}: {e.Message}"));
            }
        }

        CheckGrant(bundle, keySets, included, checks);
        foreach (var peer in bundle.Peers)
        {
            // Each other domain's part stands on its own: its log key, its checkpoint cosigned by witnesses, its records.
            var origins = string.Join(", ", peer.Logs.Keys);
            checks.Add(new EvidenceCheck(peer.IntentId == bundle.IntentId, $"peer part of {origins} is evidence of intent {bundle.IntentId}" + (peer.IntentId == bundle.IntentId ? "" : $": it is of {peer.IntentId}")));
            var overlap = peer.Logs.Keys.Intersect(bundle.Logs.Keys, StringComparer.Ordinal).ToList();
            checks.Add(new EvidenceCheck(overlap.Count == 0, $"peer part of {origins} is another log than the bundle's own" + (overlap.Count == 0 ? "" : $": {string.Join(", ", overlap)} appears twice")));
            var report = Verify(peer, pinned, witnessesRequired);
            untrusted |= report.UntrustedRoots;
            checks.AddRange(report.Checks.Select(c => c with { Description = $"peer {origins}: {c.Description}" }));
        }

        return new EvidenceReport(checks, untrusted);
    }

    private static void CheckGrant(EvidenceBundle bundle, Dictionary<string, KeySet> keySets, List<(EvidenceRecord Record, string Origin)> included, List<EvidenceCheck> checks)
    {
        if (bundle.Grant is null)
        {
            checks.Add(new EvidenceCheck(true, "no grant in the bundle (the intent was not granted)"));
            return;
        }

        var parsed = CompactJws.Parse(bundle.Grant, Grants.Type);
        if (!parsed.IsValid)
        {
            checks.Add(new EvidenceCheck(false, "grant is a well-formed JWS: " + parsed.Detail));
            return;
        }

        var jws = parsed.Value!;
        var iss = Claim(jws.Payload, "iss");
        var entry = iss is not null && keySets.TryGetValue(iss, out var set) && !set.Revoked.Contains(jws.KeyId, StringComparer.Ordinal)
            ? set.Keys.FirstOrDefault(k => k.KeyId == jws.KeyId && k.Usage == KeyUsage.Grant)
            : null;
        var signed = entry is not null && Ed25519Keys.Verify(entry.PublicKeyBytes(), jws.SigningInput, jws.Signature);
        checks.Add(new EvidenceCheck(signed, $"grant signed by grant key {jws.KeyId} of {iss}" + (entry is null ? ": no such key in a pinned key set" : "")));

        var intentId = Claim(jws.Payload, "intent_id");
        var sameIntent = intentId is not null && (intentId == bundle.IntentId || (Guid.TryParse(intentId, out var a) && Guid.TryParse(bundle.IntentId, out var b) && a == b));
        checks.Add(new EvidenceCheck(sameIntent, $"grant intent_id {intentId} is the bundle's intent {bundle.IntentId}"));

        var index = jws.Payload.TryGetProperty("lineage_index", out var li) && li.TryGetInt64(out var n) ? n : -1;
        var origin = iss is null ? "" : LineageNames.Origin(iss);
        var record = included.FirstOrDefault(x => x.Origin == origin && x.Record.Index == index).Record;
        checks.Add(new EvidenceCheck(record is not null, $"grant lineage_index {index} is an included record of {origin}"));
        if (record is null)
        {
            return;
        }

        var digest = Claim(jws.Payload, "intent_digest");
        var leafDigest = EvidenceExporter.FindString(record.Leaf, "intentDigest");
        var leafText = Encoding.UTF8.GetString(record.Leaf);
        var match = digest is not null && (leafDigest == digest || (leafDigest is null && leafText.Contains(bundle.Grant, StringComparison.Ordinal)));
        checks.Add(new EvidenceCheck(match, $"grant intent_digest {digest} matches the decision record" + (match ? "" : $" (record says {leafDigest ?? "nothing"})")));
    }

    private static string? Claim(JsonElement payload, string name) =>
        payload.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static (bool Ok, VerifierKey? Key, string Detail) Chain(string text, string name, string suffix, byte type, KeyUsage usage, Dictionary<string, KeySet> keySets)
    {
        VerifierKey key;
        try
        {
            key = VerifierKey.Parse(text);
        }
        catch (FormatException e)
        {
            return (false, null, ": " + e.Message);
        }

        if (key.Name != name || key.SignatureType != type || !name.EndsWith(suffix, StringComparison.Ordinal))
        {
            return (false, null, $": the key is named {key.Name} with type {key.SignatureType}");
        }

        var domain = name[..^suffix.Length];
        if (!keySets.TryGetValue(domain, out var set))
        {
            return (false, null, $": no key set of {domain} signed by a pinned root");
        }

        var ok = set.Keys.Any(k => k.Usage == usage && !set.Revoked.Contains(k.KeyId, StringComparer.Ordinal) && k.PublicKeyBytes().AsSpan().SequenceEqual(key.PublicKey));
        return ok ? (true, key, "") : (false, null, $": not a {usage.ToWire()} key of {domain}'s pinned key set");
    }

    private static List<(string Kid, string X)> JwksKeys(JsonObject? jwks, List<EvidenceCheck> checks)
    {
        var list = new List<(string, string)>();
        if (jwks is null)
        {
            return list;
        }

        if (jwks["keys"] is not JsonArray keys)
        {
            checks.Add(new EvidenceCheck(false, "trust.jwks is a JWKS with a keys array"));
            return list;
        }

        foreach (var k in keys)
        {
            var kid = k?["kid"]?.GetValueKind() == JsonValueKind.String ? k["kid"]!.GetValue<string>() : null;
            var x = k?["x"]?.GetValueKind() == JsonValueKind.String ? k["x"]!.GetValue<string>() : null;
            if (kid is null || x is null)
            {
                checks.Add(new EvidenceCheck(false, "every JWKS key has a kid and an x"));
                continue;
            }

            list.Add((kid, x));
        }

        return list;
    }

    private static string? LeafType(byte[] leaf)
    {
        try
        {
            return JsonNode.Parse(leaf) is JsonObject o && o["type"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
