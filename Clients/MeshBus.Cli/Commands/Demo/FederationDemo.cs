using System.Diagnostics;
using System.Text.Json.Nodes;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Embedded;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.Ledger.Evidence;
using MeshBus.Persistence;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Trust.Notes;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Cli.Commands.Demo;

/// <summary>One step of the demo and whether it behaved as expected.</summary>
/// <param name="Part">The part of the demo it belongs to (1 to 6, as <c>meshbus demo --help</c> lists them; 0: setting up).</param>
/// <param name="Name">What was checked.</param>
/// <param name="Ok">Whether it behaved as expected.</param>
/// <param name="Detail">What was seen.</param>
/// <param name="ElapsedMs">Milliseconds since the demo started, when the step was decided.</param>
public sealed record DemoStep(int Part, string Name, bool Ok, string Detail, long ElapsedMs);

/// <summary>A step did not behave as expected: the demo stops there (later steps depend on it).</summary>
internal sealed class DemoStepFailedException(string step, string detail) : Exception($"step '{step}' failed: {detail}")
{
    public string Step { get; } = step;
}

/// <summary>
/// What the demo varies for its own tests: a scenario where one step must fail, to show the exit code is earned.
/// </summary>
public sealed record DemoScenario
{
    /// <summary>The demo as documented.</summary>
    public static DemoScenario Default { get; } = new();

    /// <summary>
    /// Partner's pushed policy (epoch 2) withdraws the rule that allowed the running execution, so its re-evaluation
    /// denies it and the step "re-evaluation still allows the running execution" fails.
    /// </summary>
    public bool PushedPolicyWithdrawsTheAllow { get; init; }
}

/// <summary>
/// The federation demo's scenario: <c>acme.example/prod</c> and <c>partner.example/prod</c> in this process
/// (<see cref="EmbeddedFederation"/>: each its own in-memory bus, SQLite files and four workers, joined by the in-process
/// link of the bridge, each pinning the other's root), walked through the seven phases of DESIGN.md §3 with short
/// demo-only intervals. Every step checks what the mesh did (lineage records, saga states, the agent's lease, the
/// timeline of both buses) and stops the demo when it is not what was expected.
/// </summary>
internal sealed class FederationDemo(string data, DemoScenario scenario, DemoTimeline timeline, Action<string> say, Action<DemoStep> report)
{
    public const string Acme = "acme.example/prod";
    public const string Partner = "partner.example/prod";
    private const string Web = "k8s://partner/ns/web";
    private const string Payments = "k8s://partner/ns/payments";

    /// <summary>How long the peer watchdog waits for a good statement of a peer before trust lapses (demo only; 45 s by default).</summary>
    public static readonly TimeSpan StallAfter = TimeSpan.FromSeconds(2.5);

    // The demo's short intervals (the defaults are for fleets): heartbeats every 0.5 s, the freshness bound 2 s (shorter than
    // the stall bound, so new intents are refused before running work is halted; an intent waits at most 0.5 s for it), a
    // checkpoint each second, renewals asked for as soon as a tenth of the lease has passed.
    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["Sync:HeartbeatInterval"] = "00:00:00.5",
        ["Sync:PeerStallAfter"] = StallAfter.ToString("c"),
        ["Authorize:HeartbeatBoundSeconds"] = "2",
        ["Authorize:SyncWaitSeconds"] = "0.5",
        ["Authorize:ReplicaReportSeconds"] = "0.5",
        ["MeshBus:RedeliverySeconds:0"] = "0.25",
        ["MeshBus:RedeliverySeconds:1"] = "0.5",
        ["MeshBus:RedeliverySeconds:2"] = "1",
        ["Lineage:CheckpointInterval"] = "00:00:01",
        ["Lineage:CheckpointCheckInterval"] = "00:00:00.25",
        ["Enforce:RenewalFraction"] = "0.9",
    };

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _part;

    public async Task RunAsync(CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        var acmeKeys = DomainAdministration.Initialize(Path.Combine(data, "acme", "keys"), Acme, now).DirectoryPath;
        var partnerKeys = DomainAdministration.Initialize(Path.Combine(data, "partner", "keys"), Partner, now).DirectoryPath;
        EmbeddedFederation.PinEachOther([acmeKeys, partnerKeys], now);
        var pinned = Path.Combine(data, "pinned");
        foreach (var dir in new[] { acmeKeys, partnerKeys })
        {
            TrustFiles.Export(DomainKeys.Load(dir), pinned, jwks: false, now);
        }

        say($"keys: {Acme} in {acmeKeys}, {Partner} in {partnerKeys}; each pins the other's root");
        say($"auditor's trust directory: {pinned} (the two roots and key sets, as meshbus trust export writes them)");

        var acmeOptions = Domain(Acme, acmeKeys, AcmePolicy, AcmeEgressPolicy, now);
        var partnerOptions = Domain(Partner, partnerKeys, PartnerPolicy(1, withdrawWeb: false), null, now);
        say($"policies: {Acme} egress allows deploy to {Partner}, denies delete there (rule no-delete-abroad); " +
            $"{Partner} allows deployers to deploy {Partner}'s k8s://partner/ns/** with 10 s leases, denies deploy to payments (rule freeze-payments)");
        var started = _clock.ElapsedMilliseconds;
        await using var federation = await EmbeddedFederation.StartAsync([acmeOptions, partnerOptions], ct);
        var (acme, partner) = (federation[Acme], federation[Partner]);
        Step("federation started", true, $"{string.Join(", ", EmbeddedMesh.WorkerNames)} for each domain, in-memory buses, SQLite, " +
            $"in-process bridge; started in {_clock.ElapsedMilliseconds - started} ms");
        var agentKey = Ed25519Keys.NewPrivateKey();
        var subject = Acme + "/agents/deployer";
        var acmeDomainKeys = DomainKeys.Load(acmeKeys, KeyUsage.Credential);
        var credential = Credentials.Issue(new CredentialClaims(Acme, subject, "c-" + Guid.NewGuid().ToString("N")[..8], Base64Url.Encode(Ed25519Keys.PublicKeyOf(agentKey)),
            new AgentAttributes("sha256:demo", "demo", "team-web", ["deployers"]), now, now, now.AddHours(1)), acmeDomainKeys.Signer(KeyUsage.Credential, now));
        await using var agent = await MeshBusAgent.ConnectAsync(acme.Bus, new MeshBusAgentOptions
        {
            Subject = subject,
            HomeDomain = Acme,
            PrivateKey = agentKey,
            Credential = credential,
            // acme's trust config pins partner's root: the SDK verifies partner's grants against it.
            KeyResolver = acmeDomainKeys.LoadTrust(),
            HeartbeatInterval = TimeSpan.FromSeconds(0.5),
            DecisionTimeout = TimeSpan.FromSeconds(10),
        }, ct);
        say($"agent {subject} (credential from {Acme}) on acme's bus only; queue {agent.QueueName}");
        await StepUntilAsync("governance in sync", async () =>
                await HeardAsync(acme, Partner, ct) && await HeardAsync(partner, Acme, ct),
            "each domain's Sync verified and recorded a signed heartbeat of the other (over the bridge)", ct);

        // Lifecycle phases 1-6 (DESIGN.md §3): a cross-domain grant verified by the agent, execution and renewals.
        Part(1, "an acme agent's intent on a partner resource (lifecycle phases 1-6)");
        var granted = await GrantedAsync(agent, acme, partner, ct);

        // Lifecycle phase 3: denials by either domain's policy, each with its rule.
        Part(2, "denials by partner's policy and by acme's egress policy (phase 3)");
        var byPartner = await SubmitAsync(agent, new IntentRequest("deploy", Payments) { TargetDomain = Partner }, ct);
        var partnerRecord = byPartner?.Denial is { } pd ? await partner.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(pd.IntentId), ct) : null;
        Step("denied by partner's policy", byPartner?.Denial is { RejectedByAgent: false, Reason: GovernanceReason.PolicyDenied } d1
                && d1.Detail.Contains("'freeze-payments'", StringComparison.Ordinal) && partnerRecord is not null,
            Describe(byPartner, $"deploy {Payments}") + (partnerRecord is null ? "" : $"; decided and recorded by {Partner} (lineage {partnerRecord.Index}), answered over the bridge"));
        var byEgress = await SubmitAsync(agent, new IntentRequest("delete", Web) { TargetDomain = Partner }, ct);
        var crossed = byEgress?.Denial is { } ed && await partner.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(ed.IntentId), ct) is not null;
        Step("denied by acme's egress policy", byEgress?.Denial is { RejectedByAgent: false, Reason: GovernanceReason.PolicyDenied } d2
                && d2.Detail.Contains("'no-delete-abroad'", StringComparison.Ordinal) && !crossed,
            Describe(byEgress, $"delete {Web}") + (crossed ? "; but partner has a record of it" : $"; decided by {Acme} alone, it never crossed the bridge"));

        // Lifecycle phases 2 and 6: a policy push in partner re-evaluates the running execution; acme acknowledges partner's new epoch.
        Part(3, "a policy push in partner re-evaluates the running execution (phases 2 and 6)");
        await File.WriteAllTextAsync(partnerOptions.PolicyBundleFile!, SignedPolicy(partnerKeys, PartnerPolicy(2, scenario.PushedPolicyWithdrawsTheAllow), now), ct);
        say($"operator ({Partner}): replaced {partnerOptions.PolicyBundleFile} with epoch 2 (adds rule freeze-billing); Sync rolls it out on its next interval");
        await StepUntilAsync("re-evaluation still allows the running execution",
            () => Task.FromResult(granted.Token.IsCancellationRequested || granted.Claims.Policies.Any(p => p.Domain == Partner && p.Epoch == 2)),
            () => granted.Token.IsCancellationRequested
                ? $"the execution was halted: {granted.StopReason} {granted.StopDetail}"
                : $"partner's Enforce asked for EvaluateIntent under epoch 2; the lease was renewed (renewal {granted.Claims.Renewal}, policy epoch 2) and keeps running",
            ct, ok: () => !granted.Token.IsCancellationRequested);
        var acmeStore = acme.Services.GetRequiredService<IPeerSyncStore>();
        await StepUntilAsync("acme acknowledged partner's epoch", async () => (await acmeStore.AcknowledgedAsync(Partner, Partner, nameof(PolicyScope.Domain), ct))?.Epoch == 2,
            $"partner's signed PolicySynced crossed the bridge; acme's Sync verified it under partner's pinned root and recorded epoch 2 (its watchdog moved on)", ct);
        await granted.CompleteAsync("deployed", ct);
        await StepUntilAsync("execution completed", async () => await partner.LifecycleStateAsync(granted.IntentId, ct) == "Completed",
            "ExecutionCompleted crossed to partner; partner's execution record Completed", ct);
        // What parts 1-3 recorded; part 5 shows it cosigned while the rest of the demo runs.
        var (acmeSize, partnerSize) = (await SizeAsync(acme, ct), await SizeAsync(partner, ct));

        // Lifecycle phase 6: the bridge stalls, the watchdog halts the running work; recovery restores trust, nothing resumes.
        Part(4, "the bridge stalls: the watchdog lapses trust and halts the running work (phase 6)");
        var halted = await StartedAsync(agent, partner, ct);
        var stalledAt = _clock.ElapsedMilliseconds;
        federation.Network.Stall(Partner, Acme);
        say($"network: the link from {Partner} to {Acme} stalls (what partner sends, its heartbeats included, is held)");
        await StepUntilAsync("TrustLapsed(SyncStalled)", () => Task.FromResult(Seen(Acme, nameof(TrustLapsed), reason: nameof(GovernanceReason.SyncStalled))),
            () => $"acme's watchdog deadline for partner passed ({StallAfter.TotalSeconds} s after partner's last heartbeat): TrustLapsed(SyncStalled) {_clock.ElapsedMilliseconds - stalledAt} ms after the stall",
            ct);
        await StepUntilAsync("scoped halt", () => Task.FromResult(timeline.Entries.Any(e => e.Domain == Acme && e.Event == nameof(HaltExecution) && e.Reason == nameof(GovernanceReason.SyncStalled))),
            "acme's watchdog published one HaltExecution scoped to peer partner; Enforce fanned it out to the executions involving partner", ct);
        await StepUntilAsync("the halt reaches the agent", () => Task.FromResult(halted.Token.IsCancellationRequested),
            () => $"lease token cancelled ({halted.StopReason})", ct, ok: () => halted.StopReason == GovernanceReason.SyncStalled);
        await StepUntilAsync("ExecutionHalted recorded in both domains", async () =>
                await acme.Lineage.GetByKeyAsync($"halted:{halted.IntentId:D}", ct) is not null && await partner.Lineage.GetByKeyAsync($"halted:{halted.IntentId:D}", ct) is not null,
            "the agent's signed ExecutionHalted is in acme's lineage and, over the bridge (acme → partner still flows), in partner's", ct);
        var stale = await SubmitAsync(agent, new IntentRequest("deploy", Web) { TargetDomain = Partner, MaxDuration = TimeSpan.FromMinutes(5) }, ct);
        Step("new intent denied SyncStale", stale?.Denial is { Reason: GovernanceReason.SyncStale }, Describe(stale, $"deploy {Web}"));
        var startsBefore = Count(halted.IntentId, nameof(ExecutionStarted));
        var held = federation.Network.Recover(Partner, Acme);
        var recoveredAt = _clock.ElapsedMilliseconds;
        say($"network: the link from {Partner} to {Acme} recovers; {held} held envelope(s) delivered in order");
        await StepUntilAsync("TrustRestored", () => Task.FromResult(Seen(Acme, nameof(TrustRestored))),
            () => $"a heartbeat partner signed after the lapse verified: TrustRestored {_clock.ElapsedMilliseconds - recoveredAt} ms after the recovery", ct);
        // Checked once the held envelopes (partner's renewals of the halted execution among them) reached acme.
        await WaitAsync(() => Task.FromResult(Count(halted.IntentId, nameof(GrantRenewed), Acme) > 0 || held == 0), ct);
        var resumed = Count(halted.IntentId, nameof(ExecutionStarted)) > startsBefore;
        var states = $"{await acme.LifecycleStateAsync(halted.IntentId, ct)}/{await partner.LifecycleStateAsync(halted.IntentId, ct)}";
        Step("nothing resumes by itself", halted.Token.IsCancellationRequested && !resumed && states == "Halted/Halted",
            $"partner's held renewals reached acme and changed nothing: the agent's lease stays cancelled, no new ExecutionStarted, execution records (acme/partner) {states}");

        // Lifecycle phase 7: witnessing and evidence.
        Part(5, "checkpoints cosigned by the other domain's witness (phase 7)");
        var acmeCheckpoint = await CosignedCheckpointAsync(acme, Partner, acmeSize, ct);
        var partnerCheckpoint = await CosignedCheckpointAsync(partner, Acme, partnerSize, ct);
        Step("acme's checkpoint cosigned by partner's witness", acmeCheckpoint is not null, acmeCheckpoint is { } a
            ? $"{LineageNames.Origin(Acme)} at size {a.Size} (parts 1-3 recorded {acmeSize} entries) cosigned by {LineageNames.Witness(Partner)} after a consistency proof"
            : "no cosigned checkpoint");
        Step("partner's checkpoint cosigned by acme's witness", partnerCheckpoint is not null, partnerCheckpoint is { } p
            ? $"{LineageNames.Origin(Partner)} at size {p.Size} (parts 1-3 recorded {partnerSize} entries) cosigned by {LineageNames.Witness(Acme)} after a consistency proof"
            : "no cosigned checkpoint");

        Part(6, "evidence bundles verified offline against the two pinned roots only (phase 7)");
        foreach (var (label, intent) in new[] { ("granted", granted.IntentId), ("halted", halted.IntentId) })
        {
            await EvidenceAsync(acme, label, intent, pinned, ct);
        }
    }

    private static async Task<bool> HeardAsync(EmbeddedMesh mesh, string peer, CancellationToken ct) =>
        await mesh.Services.GetRequiredService<IPeerSyncStore>().GetAsync(peer, ct) is { HeartbeatSequence: > 0 };

    private async Task<Lease> GrantedAsync(MeshBusAgent agent, EmbeddedMesh acme, EmbeddedMesh partner, CancellationToken ct)
    {
        var outcome = await SubmitAsync(agent, new IntentRequest("deploy", Web) { TargetDomain = Partner, MaxDuration = TimeSpan.FromMinutes(5) }, ct);
        if (outcome?.Lease is not { } lease)
        {
            throw Failed("grant verified by the agent", Describe(outcome, $"deploy {Web}"));
        }

        var id = lease.IntentId;
        var egress = await acme.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(id), ct);
        Step("acme's egress decision", egress is not null && DecisionRecord.Parse(egress.Data) is { Kind: DecisionRecord.EgressKind, Allowed: true },
            $"intent {id}: acme's Authorize allowed it under its egress policy (rule allow-deploy-to-partner), recorded it (lineage {egress?.Index}) and signed an endorsement");
        Step("the bridge carried the endorsement", timeline.Entries.Any(e => e.Domain == Partner && e.Event == nameof(IntentEndorsed) && e.IntentId == id.ToString("D")),
            "IntentEndorsed sealed by acme's Sync, checked and delivered by partner's");
        var decision = await partner.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(id), ct);
        Step("partner's decision and record", decision is not null && DecisionRecord.Parse(decision.Data) is { Kind: DecisionRecord.DecisionKind, Allowed: true },
            $"partner's Authorize checked acme's freshness and the endorsement, allowed it (rule allow-deploy), recorded it (lineage {decision?.Index}) before signing the grant");
        Step("grant verified by the agent", lease.Claims.Issuer == Partner && lease.Claims.Audience == Partner,
            $"GrantIssued crossed back; the SDK verified partner's signature under the pinned root, typ, aud {lease.Claims.Audience}, cnf, exp: lease {lease.Remaining().TotalSeconds:0} s, lineage index {lease.Claims.LineageIndex}");
        await lease.StartAsync(ct);
        await StepUntilAsync("execution started", async () => await partner.LifecycleStateAsync(id, ct) == "Executing" && await acme.LifecycleStateAsync(id, ct) == "Executing",
            "ExecutionStarted signed by the agent; both domains' Enforce sagas Executing", ct);
        await StepUntilAsync("heartbeats renew the lease", () => Task.FromResult(lease.Claims.Renewal > 0 || lease.Token.IsCancellationRequested),
            () => $"ExecutionHeartbeat crossed to partner, whose Enforce asked for a renewal, decided and recorded like a grant: GrantRenewed {lease.Claims.Renewal}, lease {lease.Remaining().TotalSeconds:0} s",
            ct, ok: () => !lease.Token.IsCancellationRequested);
        return lease;
    }

    private async Task<Lease> StartedAsync(MeshBusAgent agent, EmbeddedMesh partner, CancellationToken ct)
    {
        var outcome = await SubmitAsync(agent, new IntentRequest("deploy", Web) { TargetDomain = Partner, MaxDuration = TimeSpan.FromMinutes(5) }, ct);
        if (outcome?.Lease is not { } lease)
        {
            throw Failed("second execution started", Describe(outcome, $"deploy {Web}"));
        }

        await lease.StartAsync(ct);
        await StepUntilAsync("second execution started", async () => await partner.LifecycleStateAsync(lease.IntentId, ct) == "Executing",
            $"intent {lease.IntentId} granted by partner and Executing", ct);
        return lease;
    }

    private int Count(Guid intent, string type, string? domain = null) =>
        timeline.Entries.Count(e => e.IntentId == intent.ToString("D") && e.Event == type && (domain is null || e.Domain == domain));

    private static async Task<long> SizeAsync(EmbeddedMesh mesh, CancellationToken ct) => (await mesh.Lineage.GetTreeHeadAsync(ct)).Size;

    /// <summary>Waits for a checkpoint of <paramref name="mesh"/> of at least <paramref name="size"/> that <paramref name="witness"/>'s witness cosigned.</summary>
    private async Task<StoredCheckpoint?> CosignedCheckpointAsync(EmbeddedMesh mesh, string witness, long size, CancellationToken ct)
    {
        var store = (ICheckpointStore)mesh.Lineage;
        var prefix = "— " + LineageNames.Witness(witness) + " ";
        StoredCheckpoint? found = null;
        await WaitAsync(async () =>
        {
            foreach (var c in (await store.GetCheckpointsAsync(ct)).Where(c => c.Size >= size).OrderByDescending(c => c.Size))
            {
                if ((await store.GetCosignaturesAsync(c.Size, ct)).Any(l => l.StartsWith(prefix, StringComparison.Ordinal)))
                {
                    found = c;
                    return true;
                }
            }

            return false;
        }, ct);
        return found;
    }

    /// <summary>
    /// acme asks partner for its part over the bridge (<see cref="ProofRequest"/>; acme's Lineage verifies and records the
    /// answer), exports the bundle against a checkpoint partner's witness cosigned, writes it to <c>evidence/</c>, verifies
    /// it with <c>meshbus proof verify</c> against the pinned roots only, and shows a copy with one changed byte refused.
    /// </summary>
    private async Task EvidenceAsync(EmbeddedMesh acme, string label, Guid intent, string pinned, CancellationToken ct)
    {
        var id = intent.ToString("D");
        await acme.Bus.Publish(new ProofRequest(Guid.NewGuid(), Partner, intent) { Requester = Acme }, ct);
        await StepUntilAsync($"partner's part of the {label} intent", async () => (await acme.Lineage.FindAsync(id, ct)).Any(r => r.Type == PeerEvidence.Type),
            $"ProofRequest crossed to partner; its ProofResponse (partner's records, proven against a checkpoint acme's witness cosigned) verified and recorded in acme's lineage", ct);
        var sql = (SqlLineageLog)acme.Lineage;
        var records = (await sql.FindAsync(id, ct)).Where(r => r.Type != PeerEvidence.Type).ToList();
        var checkpoint = await CosignedCheckpointAsync(acme, Partner, records.Max(r => r.Index) + 1, ct);
        if (checkpoint is null)
        {
            throw Failed($"{label} evidence exported", "no checkpoint of acme covering the intent's records was cosigned by partner's witness");
        }

        var keyDir = Path.Combine(data, "acme", "keys");
        var keys = DomainKeys.Load(keyDir, KeyUsage.Log);
        var signer = new Ed25519NoteSigner(LineageNames.Origin(Acme), keys.Signer(KeyUsage.Log, DateTimeOffset.UtcNow));
        var witnesses = keys.LoadTrust().PeerKeySets.Values
            .SelectMany(s => s.Keys.Where(k => k.Usage == KeyUsage.Witness).Select(k => VerifierKey.Create(LineageNames.Witness(s.Domain), k.PublicKeyBytes(), VerifierKey.CosignatureType)))
            .ToList();
        var bundle = await EvidenceExporter.ExportAsync(sql, new CheckpointPublisher(sql, sql, signer), signer.VerifierKey, id, witnesses,
            Jwks.FromKeySet(keys.KeySet, DateTimeOffset.UtcNow), cancellationToken: ct, at: checkpoint);
        var file = Path.Combine(data, "evidence", $"{label}-{id}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var json = bundle.ToJson();
        await File.WriteAllTextAsync(file, json, ct);
        var partnerRecords = bundle.Peers.Sum(p => p.Records.Count);
        Step($"{label} evidence exported", bundle.Records.Count > 0 && partnerRecords > 0,
            $"{file}: {bundle.Records.Count} acme record(s) ({string.Join(", ", bundle.Records.Select(r => r.Type).Distinct())}) and " +
            $"{partnerRecords} partner record(s) ({string.Join(", ", bundle.Peers.SelectMany(p => p.Records).Select(r => r.Type).Distinct())})");

        var (code, output) = await RunCliAsync(["proof", "verify", file, "--trust", pinned, "--min-cosignatures", "1"], ct);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        say($"auditor: meshbus proof verify {file} --trust {pinned} --min-cosignatures 1");
        say($"    {lines.Count(l => l.StartsWith("PASS", StringComparison.Ordinal))} PASS, {lines.Count(l => l.StartsWith("FAIL", StringComparison.Ordinal))} FAIL; {lines.LastOrDefault()}");
        Step($"{label} evidence verified offline", code == 0,
            code == 0 ? "every check passed against the two pinned roots only, each domain's part cosigned by the other's witness" : $"proof verify exited {code}: {string.Join("; ", lines.Where(l => l.StartsWith("FAIL", StringComparison.Ordinal)))}");

        // One byte changed in partner's part (a character of the first record's leaf): refused.
        var node = JsonNode.Parse(json)!;
        var leaf = node["peers"]![0]!["records"]![0]!["leaf"]!.GetValue<string>();
        var chars = leaf.ToCharArray();
        chars[8] = chars[8] == 'A' ? 'B' : 'A';
        node["peers"]![0]!["records"]![0]!["leaf"] = new string(chars);
        var tampered = Path.Combine(data, "tampered", $"{label}-{id}.json");
        Directory.CreateDirectory(Path.GetDirectoryName(tampered)!);
        await File.WriteAllTextAsync(tampered, node.ToJsonString(), ct);
        var (refused, refusal) = await RunCliAsync(["proof", "verify", tampered, "--trust", pinned, "--min-cosignatures", "1"], ct);
        Step($"tampered {label} evidence refused", refused == 1,
            refused == 1 ? $"one changed byte in partner's first record ({tampered}): proof verify exits 1 ({refusal.Split('\n').FirstOrDefault(l => l.StartsWith("FAIL", StringComparison.Ordinal))?.Trim()})" : $"proof verify exited {refused}");
    }

    private static async Task<(int ExitCode, string Output)> RunCliAsync(string[] args, CancellationToken ct)
    {
        var output = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, output, TextReader.Null), ct);
        return (code, output.ToString());
    }

    private EmbeddedMeshOptions Domain(string domain, string keyDir, string policy, string? egress, DateTimeOffset now)
    {
        var dir = Path.GetDirectoryName(keyDir)!;
        var policyFile = Path.Combine(dir, "policy.json");
        File.WriteAllText(policyFile, SignedPolicy(keyDir, policy, now));
        string? egressFile = null;
        if (egress is not null)
        {
            egressFile = Path.Combine(dir, "egress.json");
            File.WriteAllText(egressFile, SignedPolicy(keyDir, egress, now));
        }

        return new EmbeddedMeshOptions(domain, dir, keyDir, policyFile)
        {
            EgressPolicyBundleFile = egressFile,
            Settings = Settings,
            ConfigureServices = services => timeline.Observe(services, domain),
        };
    }

    private static string SignedPolicy(string keyDir, string json, DateTimeOffset now) =>
        PolicyBundleSigning.Sign(json, DomainKeys.Load(keyDir, KeyUsage.Grant).Signer(KeyUsage.Grant, now));

    private const string AcmePolicy = $$$"""
        {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{Acme}}}","epoch":1,
         "description":"What may be done in acme.example/prod.",
         "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://acme/**"]}}]}
        """;

    private const string AcmeEgressPolicy = $$$"""
        {"format":"meshbus-policy/v1","scope":"egress","domain":"{{{Acme}}}","epoch":1,
         "description":"What acme's agents may do in other domains.",
         "rules":[
           {"id":"allow-deploy-to-partner","effect":"allow","match":{"actions":["deploy"],"resources":["**"]},"condition":"target.domain == '{{{Partner}}}'"},
           {"id":"no-delete-abroad","description":"acme's agents delete nothing in another domain.","effect":"deny","match":{"actions":["delete"],"resources":["**"]}}]}
        """;

    /// <summary>Partner's policy; epoch 2 adds a rule, and (for the failing scenario) may narrow the allow so the running execution is no longer allowed.</summary>
    private static string PartnerPolicy(long epoch, bool withdrawWeb)
    {
        var allowed = withdrawWeb ? "k8s://partner/ns/batch" : "k8s://partner/ns/**";
        var billing = epoch > 1
            ? """,{"id":"freeze-billing","description":"Billing is frozen too.","effect":"deny","match":{"actions":["deploy"],"resources":["k8s://partner/ns/billing"]}}"""
            : "";
        return $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{Partner}}}","epoch":{{{epoch}}},
             "description":"What may be done in partner.example/prod.",
             "rules":[
               {"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["{{{allowed}}}"]},
                "condition":"'deployers' in agent.claims.groups","obligations":{"maxLeaseSeconds":10}},
               {"id":"freeze-payments","description":"Payments are frozen.","effect":"deny","match":{"actions":["deploy"],"resources":["{{{Payments}}}"]}}{{{billing}}}]}
            """;
    }

    private void Part(int part, string title)
    {
        _part = part;
        say("");
        say($"part {part} of 6: {title}");
    }

    private bool Seen(string domain, string type, string? reason = null) =>
        timeline.Entries.Any(e => e.Domain == domain && e.Event == type && (reason is null || e.Reason == reason));

    /// <summary>Reports a step; one that did not behave as expected stops the demo.</summary>
    private void Step(string name, bool ok, string detail)
    {
        if (!ok)
        {
            throw Failed(name, detail);
        }

        report(new DemoStep(_part, name, true, detail, _clock.ElapsedMilliseconds));
    }

    /// <summary>Reports a failed step and returns the exception that stops the demo.</summary>
    private DemoStepFailedException Failed(string name, string detail)
    {
        report(new DemoStep(_part, name, false, detail, _clock.ElapsedMilliseconds));
        return new DemoStepFailedException(name, detail);
    }

    private Task StepUntilAsync(string name, Func<Task<bool>> done, string detail, CancellationToken ct) =>
        StepUntilAsync(name, done, () => detail, ct);

    /// <summary>Waits (bounded) until <paramref name="done"/>, then reports the step, ok when <paramref name="ok"/> (default: it happened).</summary>
    private async Task StepUntilAsync(string name, Func<Task<bool>> done, Func<string> detail, CancellationToken ct, Func<bool>? ok = null)
    {
        var happened = await WaitAsync(done, ct);
        Step(name, happened && (ok?.Invoke() ?? true), happened ? detail() : $"did not happen within {StepBound.TotalSeconds:0} s");
    }

    /// <summary>The bound of every wait: far above what a step takes on a loaded machine, so a step that never happens fails the demo instead of hanging it.</summary>
    private static readonly TimeSpan StepBound = TimeSpan.FromSeconds(15);

    private static async Task<bool> WaitAsync(Func<Task<bool>> done, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + StepBound;
        while (!await done())
        {
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            await Task.Delay(25, ct);
        }

        return true;
    }

    private static async Task<IntentOutcome?> SubmitAsync(MeshBusAgent agent, IntentRequest request, CancellationToken ct)
    {
        try
        {
            return await agent.SubmitIntentAsync(request, ct);
        }
        catch (IntentDecisionTimeoutException)
        {
            return null;
        }
    }

    private static string Describe(IntentOutcome? outcome, string what) => outcome switch
    {
        { Denial: { } d } => $"{what}: denied {d.Reason}: {d.Detail}",
        { Lease: { } l } => $"{what}: granted (grant {l.Claims.GrantId})",
        _ => $"{what}: no decision arrived",
    };
}
