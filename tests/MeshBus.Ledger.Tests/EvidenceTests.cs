using System.Text;
using System.Text.Json.Nodes;
using MeshBus.Cli;
using MeshBus.Contracts;
using MeshBus.Ledger.Decisions;
using MeshBus.Ledger.Evidence;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Trust.Notes;

namespace MeshBus.Ledger.Tests;

/// <summary>End to end through the CLI: a domain directory, a log with a decision and a grant, export, verify, tamper.</summary>
public sealed class EvidenceTests : IDisposable
{
    private const string Domain = "acme.example/prod";
    private readonly TempDir _dir = new();
    private readonly Guid _intent = Guid.Parse("6f1c1f43-8d55-4a39-9b1c-2b9f3f0e0a11");

    private string DomainDir => _dir.File("acme");

    private string Store => _dir.File("lineage.db");

    private string TrustDir => _dir.File("trust");

    private async Task<string> SetUpAsync()
    {
        var now = DateTimeOffset.UtcNow;
        DomainAdministration.Initialize(DomainDir, Domain, now);
        var keys = DomainKeys.Load(DomainDir, KeyUsage.Grant, KeyUsage.Log);
        TrustFiles.Export(keys, TrustDir, false, now);
        const string digest = "sha256:8d2f0b7d1c4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
        await using var log = LineageLogs.OpenSqlite(Store);
        await log.AppendAsync(new LineageEntry("intent:" + _intent, "IntentSubmitted", Encoding.UTF8.GetBytes($"{{\"type\":\"IntentSubmitted\",\"event\":{{\"intentId\":\"{_intent}\",\"intentDigest\":\"{digest}\"}}}}")));
        await log.AppendAsync(new LineageEntry("other:1", "DomainHeartbeat", Encoding.UTF8.GetBytes("{\"type\":\"DomainHeartbeat\"}")));
        var decision = await log.AppendAsync(new LineageEntry("decision:" + _intent, "GrantIssued", Encoding.UTF8.GetBytes($"{{\"type\":\"GrantIssued\",\"event\":{{\"intentId\":\"{_intent}\",\"intentDigest\":\"{digest}\"}}}}")));
        var claims = new GrantClaims(Domain, Domain + "/agents/deployer", Domain, "g-1", _intent, digest, "deploy", "svc/web", [], decision.Index,
            Base64Url.Encode(Ed25519Keys.PublicKeyOf(new byte[32])), now, now, now.AddMinutes(5));
        var grant = Grants.Issue(claims, keys.Signer(KeyUsage.Grant, now));
        var grantFile = _dir.File("grant.jws");
        await File.WriteAllTextAsync(grantFile, grant);
        await log.AppendAsync(new LineageEntry("execution:" + _intent + ":1", "ExecutionStarted", Encoding.UTF8.GetBytes("{\"type\":\"ExecutionStarted\"}")));

        var bundle = _dir.File("evidence.json");
        var (code, output) = await RunAsync("proof", "export", "--intent", _intent.ToString(), "--out", bundle, "--store", Store, "--domain-dir", DomainDir, "--grant", grantFile);
        Assert.True(code == 0, output);
        return bundle;
    }

    private static async Task<(int Code, string Output)> RunAsync(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(o, e, new StringReader("")));
        return (code, o + e.ToString());
    }

    private Task<(int Code, string Output)> VerifyAsync(string bundle, string? trust = null, params string[] more) =>
        RunAsync(["proof", "verify", bundle, "--trust", trust ?? TrustDir, .. more]);

    [Fact]
    public async Task An_exported_bundle_verifies_offline_against_the_pinned_root()
    {
        var bundle = await SetUpAsync();
        var parsed = EvidenceBundle.Parse(await File.ReadAllTextAsync(bundle));
        Assert.Equal(3, parsed.Records.Count);
        Assert.StartsWith("c2sp.org/tlog-proof@v1\nindex 0\n", parsed.Records[0].Proof, StringComparison.Ordinal);
        Assert.Contains("\n\nacme.example/prod/lineage\n4\n", parsed.Records[0].Proof, StringComparison.Ordinal);
        var (code, output) = await VerifyAsync(bundle);
        Assert.True(code == 0, output);
        Assert.DoesNotContain("FAIL", output, StringComparison.Ordinal);
        Assert.Contains("PASS grant lineage_index 2", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exporting_a_granted_renewed_then_halted_intent_includes_the_grant_rebuilt_from_its_decision_record_and_verifies()
    {
        // What production writes: the decision record (AuthorizationDecided, meshbus-decision/v1) with its lease, then the
        // halt; no GrantIssued record, and no --grant file.
        var now = DateTimeOffset.UtcNow;
        DomainAdministration.Initialize(DomainDir, Domain, now);
        var keys = DomainKeys.Load(DomainDir, KeyUsage.Grant, KeyUsage.Log);
        TrustFiles.Export(keys, TrustDir, false, now);
        const string digest = "sha256:8d2f0b7d1c4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
        const string agent = Domain + "/agents/deployer";
        var agentKey = Base64Url.Encode(Ed25519Keys.PublicKeyOf(new byte[32]));
        var iat = now.ToUnixTimeSeconds();
        var intent = new IntentSubmitted(_intent, Domain, agent, Domain, "deploy", "svc/web", null, 300, "n-1", now, "credential", "signature");
        var lease = new LeaseClaims(_intent.ToString("D"), Domain, agent, Domain, _intent, digest, "deploy", "svc/web", agentKey, iat, iat + 300, 4, "sha256:policy", null, null, 0);
        var record = new DecisionRecord(DecisionRecord.DecisionKind, _intent, 0, Domain, agent, Domain, digest, true, GovernanceReason.None, "allowed", ["allow-deploy"],
            4, "sha256:policy", null, null, keys.KeySet.Sequence, now.ToUnixTimeMilliseconds(), lease, intent);
        long index;
        await using (var log = LineageLogs.OpenSqlite(Store))
        {
            await log.AppendAsync(new LineageEntry("other:1", "DomainHeartbeat", Encoding.UTF8.GetBytes("{\"type\":\"DomainHeartbeat\"}")));
            index = (await log.AppendAsync(new LineageEntry(record.Key, record.EntryType, record.ToBytes()))).Index;
            // A renewal's record (RenewalDecided): its leaf must say the type it is recorded under, like every leaf.
            var renewal = record with { Kind = DecisionRecord.RenewalKind, Renewal = 1 };
            await log.AppendAsync(new LineageEntry(renewal.Key, renewal.EntryType, renewal.ToBytes()));
            await log.AppendAsync(new LineageEntry("halted:" + _intent, "ExecutionHalted", Encoding.UTF8.GetBytes($"{{\"type\":\"ExecutionHalted\",\"intentId\":\"{_intent}\"}}")));
        }

        var bundle = _dir.File("evidence.json");
        var (code, output) = await RunAsync("proof", "export", "--intent", _intent.ToString(), "--out", bundle, "--store", Store, "--domain-dir", DomainDir);
        Assert.True(code == 0, output);
        Assert.Contains("grant included", output, StringComparison.Ordinal);

        var parsed = EvidenceBundle.Parse(await File.ReadAllTextAsync(bundle));
        Assert.Equal(["AuthorizationDecided", "RenewalDecided", "ExecutionHalted"], parsed.Records.Select(r => r.Type));
        Assert.Equal(Grants.Issue(lease.ToGrantClaims(index), keys.Signer(KeyUsage.Grant, now)), parsed.Grant);
        (code, output) = await VerifyAsync(bundle);
        Assert.True(code == 0, output);
        Assert.Contains($"PASS grant lineage_index {index}", output, StringComparison.Ordinal);
        Assert.Contains("PASS grant intent_digest", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("grant")]
    [InlineData("leaf")]
    [InlineData("proof")]
    [InlineData("checkpoint")]
    [InlineData("signature")]
    public async Task Changing_any_byte_fails_verification(string what)
    {
        var bundle = await SetUpAsync();
        var doc = JsonNode.Parse(await File.ReadAllTextAsync(bundle))!.AsObject();
        var record = doc["records"]![2]!.AsObject();
        var proof = record["proof"]!.GetValue<string>();
        switch (what)
        {
            case "grant":
                var g = doc["grant"]!.GetValue<string>();
                var dot = g.IndexOf('.', StringComparison.Ordinal) + 5;
                doc["grant"] = g[..dot] + (g[dot] == 'A' ? 'B' : 'A') + g[(dot + 1)..];
                break;
            case "leaf":
                var leaf = Convert.FromBase64String(record["leaf"]!.GetValue<string>());
                leaf[10] ^= 0x01;
                record["leaf"] = Convert.ToBase64String(leaf);
                break;
            case "proof":
                var lines = proof.Split('\n');
                var h = Convert.FromBase64String(lines[2]);
                h[0] ^= 0x80;
                lines[2] = Convert.ToBase64String(h);
                record["proof"] = string.Join('\n', lines);
                break;
            case "checkpoint":
                record["proof"] = proof.Replace("/lineage\n4\n", "/lineage\n5\n", StringComparison.Ordinal);
                break;
            case "signature":
                var at = proof.LastIndexOf(' ') + 3;
                record["proof"] = proof[..at] + (proof[at] == 'A' ? 'B' : 'A') + proof[(at + 1)..];
                break;
        }

        await File.WriteAllTextAsync(bundle, doc.ToJsonString());
        var (code, output) = await VerifyAsync(bundle);
        Assert.True(code == 1, output);
        Assert.Contains("FAIL", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_trust_directory_pinning_other_roots_prints_untrusted_roots()
    {
        var bundle = await SetUpAsync();
        var other = _dir.File("other");
        var otherTrust = _dir.File("other-trust");
        var now = DateTimeOffset.UtcNow;
        DomainAdministration.Initialize(other, Domain, now);
        TrustFiles.Export(DomainKeys.Load(other), otherTrust, false, now);
        var (code, output) = await VerifyAsync(bundle, otherTrust);
        Assert.Equal(1, code);
        Assert.Contains("UNTRUSTED ROOTS", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requiring_witnesses_fails_without_cosignatures_and_passes_with_them()
    {
        var bundle = await SetUpAsync();
        var (code, output) = await VerifyAsync(bundle, null, "--witnesses", "1");
        Assert.Equal(1, code);
        Assert.Contains("cosigned by 0 of 0", output, StringComparison.Ordinal);

        // A peer witness cosigns the stored checkpoint; its root is pinned beside ours.
        var peer = _dir.File("globex");
        var now = DateTimeOffset.UtcNow;
        DomainAdministration.Initialize(peer, "globex.example", now);
        var peerKeys = DomainKeys.Load(peer, KeyUsage.Witness);
        TrustFiles.Export(peerKeys, TrustDir, false, now);
        var cosigner = new CosignatureSigner(LineageNames.Witness("globex.example"), peerKeys.Signer(KeyUsage.Witness, now));
        await using (var log = LineageLogs.OpenSqlite(Store))
        {
            var cp = (await log.GetLatestCheckpointAsync())!;
            var witness = new CheckpointWitness(log, cosigner);
            var logKey = VerifierKey.Parse(EvidenceBundle.Parse(await File.ReadAllTextAsync(bundle)).Logs[LineageNames.Origin(Domain)]);
            var outcome = await witness.CosignAsync(LineageNames.Origin(Domain), cp.Note, 0, [], [logKey]);
            Assert.True(outcome.Cosigned, outcome.Detail);
            await log.AddCosignatureAsync(cp.Size, cosigner.Name, outcome.CosignatureLine!);
        }

        TrustFiles.Pin(DomainDir, "globex.example", peerKeys.Root, false);
        var peerSet = Directory.GetFiles(TrustDir, "globex*.keyset.json").Single();
        File.Copy(peerSet, Path.Combine(DomainDir, DomainKeys.TrustDirectory, Path.GetFileName(peerSet)));
        (code, output) = await RunAsync("proof", "export", "--intent", _intent.ToString(), "--out", bundle, "--store", Store, "--domain-dir", DomainDir);
        Assert.True(code == 0, output);
        (code, output) = await VerifyAsync(bundle, null, "--witnesses", "1");
        Assert.True(code == 0, output);
        Assert.Contains("cosigned by 1 of 1", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lineage_verify_passes_then_names_the_index_of_a_flipped_byte()
    {
        await SetUpAsync();
        var (code, output) = await RunAsync("lineage", "verify", "--store", Store, "--domain-dir", DomainDir);
        Assert.True(code == 0, output);
        await using (var conn = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Store};Pooling=false"))
        {
            conn.Open();
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "UPDATE lineage_entry SET data = CAST(replace(CAST(data AS TEXT), 'Heartbeat', 'Heartbeas') AS BLOB) WHERE idx = 1";
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }

        (code, output) = await RunAsync("lineage", "verify", "--store", Store);
        Assert.Equal(1, code);
        Assert.Contains("FAIL index 1:", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_error_and_exit_code()
    {
        Assert.Equal(2, (await RunAsync("proof", "verify", "--trust", TrustDir)).Code);
        var garbage = _dir.File("garbage.json");
        await File.WriteAllTextAsync(garbage, "{not json");
        Directory.CreateDirectory(TrustDir);
        var (code, output) = await VerifyAsync(garbage);
        Assert.Equal(1, code);
        Assert.Contains("FAIL bundle format", output, StringComparison.Ordinal);
        Assert.Equal(2, (await RunAsync("lineage", "verify", "--store", _dir.File("missing.db"))).Code);
    }

    public void Dispose() => _dir.Dispose();
}
