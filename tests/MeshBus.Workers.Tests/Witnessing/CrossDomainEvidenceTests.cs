using System.Text.Json.Nodes;
using MeshBus.Cli;
using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Ledger.Evidence;
using MeshBus.Trust;
using MeshBus.Trust.Notes;
using MeshBus.Workers.Tests.Skeleton;
using Xunit;

namespace MeshBus.Workers.Tests.Witnessing;

/// <summary>
/// Evidence that spans both domains: a domain asks a peer for its part of an intent over the bridge
/// (<see cref="ProofRequest"/>/<see cref="ProofResponse"/>), records it after verifying it, and its export nests it;
/// the bundle verifies offline against the two pinned roots only, each part cosigned by the other domain's witness, and
/// any changed byte in any part is refused.
/// </summary>
public sealed class CrossDomainEvidenceTests
{
    private const string Acme = "acme.example/prod";
    private const string Globex = "globex.example/prod";

    private static async Task<(WitnessDomain Acme, WitnessDomain Globex)> StartAsync()
    {
        var network = new MeshBus.Federation.InProcessFederationNetwork();
        var acme = WitnessDomain.Create(Acme);
        var globex = WitnessDomain.Create(Globex);
        acme.Pin(globex);
        globex.Pin(acme);
        await acme.StartAsync(network);
        await globex.StartAsync(network);
        return (acme, globex);
    }

    private static async Task RecordIntentAsync(WitnessDomain d, Guid intent, params string[] kinds)
    {
        foreach (var kind in kinds)
        {
            var key = $"{kind}:{intent:D}";
            await d.Lineage.AppendAsync(new LineageEntry(key, "TestEvent", Canonical.Json(new { type = "TestEvent", @event = new { kind, intentId = intent.ToString("D"), domain = d.Name } })));
        }
    }

    /// <summary>A trust directory holding only the two pinned roots and the key sets they signed (as <c>meshbus trust export</c> writes).</summary>
    private static string TrustDirectory(params WitnessDomain[] domains)
    {
        var dir = Path.Combine(Path.GetTempPath(), "meshbus-pinned-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var d in domains)
        {
            d.ExportTrust(dir);
        }

        return dir;
    }

    private static async Task<EvidenceBundle> ExportWithPeerAsync(WitnessDomain acme, WitnessDomain globex, Guid intent)
    {
        await acme.Bus.Publish(new ProofRequest(Guid.NewGuid(), Globex, intent) { Requester = Acme });
        await SkeletonHarness.EventuallyAsync(
            async () => (await acme.Lineage.FindAsync(intent.ToString("D"))).Any(r => r.Type == PeerEvidence.Type),
            found => found, "globex's evidence recorded at acme", TimeSpan.FromSeconds(45));
        var records = await acme.Lineage.FindAsync(intent.ToString("D"));
        var (checkpoint, _) = await acme.CosignedAsync(globex, records.Max(r => r.Index) + 1);
        var sql = (SqlLineageLog)acme.Lineage;
        var logKey = DomainKeys.Load(acme.KeyDirectory, KeyUsage.Log).Signer(KeyUsage.Log, DateTimeOffset.UtcNow);
        var signer = new Ed25519NoteSigner(LineageNames.Origin(Acme), logKey);
        var witness = VerifierKey.Create(LineageNames.Witness(Globex), globex.Keys.KeySet.Keys.First(k => k.Usage == KeyUsage.Witness).PublicKeyBytes(), VerifierKey.CosignatureType);
        return await EvidenceExporter.ExportAsync(sql, new CheckpointPublisher(sql, sql, signer), signer.VerifierKey, intent.ToString("D"), [witness],
            Jwks.FromKeySet(acme.Keys.KeySet, DateTimeOffset.UtcNow), at: checkpoint);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_bundle_holds_both_domains_parts_each_cosigned_by_the_other_and_verifies_against_the_pinned_roots_only()
    {
        var (acme, globex) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        var intent = Guid.NewGuid();
        await RecordIntentAsync(acme, intent, "intent", "endorsement");
        await RecordIntentAsync(globex, intent, "decision", "started", "completed");

        var bundle = await ExportWithPeerAsync(acme, globex, intent);
        var pinned = TrustDirectory(acme, globex);
        try
        {
            var peer = Assert.Single(bundle.Peers);
            Assert.Equal(LineageNames.Origin(Globex), Assert.Single(peer.Logs.Keys));
            Assert.Equal(3, peer.Records.Count);
            Assert.Equal(2, bundle.Records.Count);
            Assert.Contains(LineageNames.Witness(Acme), peer.Witnesses.Keys);
            Assert.Contains(LineageNames.Witness(Globex), bundle.Witnesses.Keys);

            var report = EvidenceVerifier.Verify(EvidenceBundle.Parse(bundle.ToJson()), TrustConfig.LoadDirectory(pinned), witnessesRequired: 1);
            Assert.True(report.Ok, string.Join("\n", report.Checks.Where(c => !c.Passed).Select(c => c.Description)));
            Assert.Contains(report.Checks, c => c.Description.StartsWith("peer " + LineageNames.Origin(Globex), StringComparison.Ordinal) && c.Description.Contains("cosigned by 1", StringComparison.Ordinal));

            // The CLI says the same, and refuses the bundle with one changed byte.
            var file = Path.Combine(pinned, "bundle.json");
            await File.WriteAllTextAsync(file, bundle.ToJson());
            Assert.Equal(0, await RunAsync("proof", "verify", file, "--trust", pinned, "--min-cosignatures", "1"));
            var node = JsonNode.Parse(bundle.ToJson())!;
            var leaf = node["peers"]![0]!["records"]![1]!["leaf"]!.GetValue<string>();
            node["peers"]![0]!["records"]![1]!["leaf"] = Flip(leaf, 4);
            await File.WriteAllTextAsync(file, node.ToJsonString());
            Assert.Equal(1, await RunAsync("proof", "verify", file, "--trust", pinned, "--min-cosignatures", "1"));
        }
        finally
        {
            Directory.Delete(pinned, true);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task One_changed_byte_in_any_record_proof_checkpoint_or_cosignature_of_either_part_is_refused()
    {
        var (acme, globex) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        var intent = Guid.NewGuid();
        await RecordIntentAsync(acme, intent, "intent");
        await RecordIntentAsync(globex, intent, "decision", "halted");
        var json = (await ExportWithPeerAsync(acme, globex, intent)).ToJson();
        var pinned = TrustDirectory(acme, globex);
        try
        {
            var trust = TrustConfig.LoadDirectory(pinned);
            Assert.True(EvidenceVerifier.Verify(EvidenceBundle.Parse(json), trust, 1).Ok);
            foreach (var (what, mutate) in Mutations())
            {
                var node = JsonNode.Parse(json)!;
                mutate(node);
                var refused = true;
                try
                {
                    refused = !EvidenceVerifier.Verify(EvidenceBundle.Parse(node.ToJsonString()), trust, 1).Ok;
                }
                catch (FormatException)
                {
                }

                Assert.True(refused, $"a bundle with a changed byte in {what} verified");
            }
        }
        finally
        {
            Directory.Delete(pinned, true);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_peers_answer_that_does_not_verify_is_not_recorded()
    {
        var (acme, globex) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        var intent = Guid.NewGuid();
        await RecordIntentAsync(globex, intent, "decision");
        await RecordIntentAsync(acme, intent, "intent");
        var genuine = (await ExportWithPeerAsync(acme, globex, intent)).Peers.Single().ToJson();
        var node = JsonNode.Parse(genuine)!;
        node["records"]![0]!["leaf"] = Flip(node["records"]![0]!["leaf"]!.GetValue<string>(), 3);
        var before = (await acme.Lineage.FindAsync(intent.ToString("D"))).Count(r => r.Type == PeerEvidence.Type);

        var forged = new ProofResponse(Guid.NewGuid(), Globex, intent, node.ToJsonString(), null) { Requester = Acme };
        await acme.Bus.Publish(forged);

        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(acme.Faulted.OfType<ProofResponse>().Any(r => r.RequestId == forged.RequestId)), f => f, "the forged answer to fault", TimeSpan.FromSeconds(30));
        Assert.Equal(before, (await acme.Lineage.FindAsync(intent.ToString("D"))).Count(r => r.Type == PeerEvidence.Type));
    }

    private static IEnumerable<(string What, Action<JsonNode> Mutate)> Mutations()
    {
        foreach (var part in new[] { "own", "peer" })
        {
            JsonNode Part(JsonNode n) => part == "own" ? n : n["peers"]![0]!;
            yield return ($"{part} record leaf", n => Part(n)["records"]![0]!["leaf"] = Flip(Part(n)["records"]![0]!["leaf"]!.GetValue<string>(), 6));
            yield return ($"{part} record index", n => Part(n)["records"]![0]!["index"] = Part(n)["records"]![0]!["index"]!.GetValue<long>() + 1);
            yield return ($"{part} inclusion proof hash", n => Part(n)["records"]![0]!["proof"] = FlipLine(Part(n)["records"]![0]!["proof"]!.GetValue<string>(), l => l.Length == 44 && !l.Contains(' ', StringComparison.Ordinal)));
            yield return ($"{part} checkpoint root", n => Part(n)["records"]![0]!["proof"] = FlipLine(Part(n)["records"]![0]!["proof"]!.GetValue<string>(), l => l.Length == 44 && l.EndsWith('=')));
            yield return ($"{part} log signature", n => Part(n)["records"]![0]!["proof"] = FlipLine(Part(n)["records"]![0]!["proof"]!.GetValue<string>(), l => l.StartsWith("— ", StringComparison.Ordinal) && l.Contains("/lineage ", StringComparison.Ordinal)));
            yield return ($"{part} cosignature", n => Part(n)["records"]![0]!["proof"] = FlipLine(Part(n)["records"]![0]!["proof"]!.GetValue<string>(), l => l.StartsWith("— ", StringComparison.Ordinal) && l.Contains("/witness ", StringComparison.Ordinal)));
        }
    }

    private static string Flip(string base64, int at)
    {
        var chars = base64.ToCharArray();
        chars[at] = chars[at] == 'A' ? 'B' : 'A';
        return new string(chars);
    }

    /// <summary>Changes one character in the middle of the first line of <paramref name="text"/> that <paramref name="pick"/> selects.</summary>
    private static string FlipLine(string text, Func<string, bool> pick)
    {
        var lines = text.Split('\n');
        var i = Array.FindIndex(lines, l => pick(l));
        Assert.True(i >= 0, "the proof has no such line:\n" + text);
        var l = lines[i].ToCharArray();
        var at = l.Length - 10;
        l[at] = l[at] == 'A' ? 'B' : 'A';
        lines[i] = new string(l);
        return string.Join('\n', lines);
    }

    private static async Task<int> RunAsync(params string[] args) =>
        await CommandLineApp.RunAsync(args, new CliConsole(new StringWriter(), new StringWriter(), new StringReader("")));
}
