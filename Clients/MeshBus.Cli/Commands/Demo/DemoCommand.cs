using System.Text.Json;
using MeshBus.Agent;
using MeshBus.Cli.Commands.Halt;
using MeshBus.Contracts;
using MeshBus.Embedded;
using MeshBus.Ledger.Merkle;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;


namespace MeshBus.Cli.Commands.Demo;

/// <summary>
/// <c>meshbus demo</c>: the embedded walking skeleton. One process hosts the four workers of <c>acme.example/prod</c>
/// on MassTransit's in-memory transport with SQLite under a data directory, creates the domain's keys, and walks an
/// agent through a grant, a denial and an operator halt, then verifies the lineage log. Exit 0 only if every step
/// behaved as expected.
/// </summary>
public sealed class DemoCommand : CliCommand, IHasFlags
{
    private const string Domain = "acme.example/prod";

    /// <inheritdoc />
    public override string Name => "demo";

    /// <inheritdoc />
    public override string Summary => "Run the embedded mesh and walk an agent through grant, denial, halt and lineage";

    /// <inheritdoc />
    public override string Usage => """
        usage: meshbus demo [--data DIR] [--out FILE] [--json]

        Starts Sync, Authorize, Enforce and Lineage for acme.example/prod in this process (in-memory transport,
        SQLite under DIR or a new temporary directory), then prints each step: an allowed intent and its verified
        grant, execution started and heartbeating, a denied intent and its reason, an operator halt (token cancelled,
        ExecutionHalted, saga Halted, halt in lineage), the evidence bundle of the allowed intent exported and
        verified offline against the pinned root (and refused once tampered), and the lineage log's recomputed root.
          --json       print a machine-readable summary instead of the transcript
          --out FILE   also write the transcript (or the JSON summary with --json) to FILE
        Exit 0 when every step behaved as expected, 1 otherwise.
        """;

    /// <inheritdoc />
    public string[] Flags => ["json"];

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var data = args.Option("data");
        var outFile = args.Option("out");
        var json = args.Flag("json");
        args.RejectUnknown();
        data ??= Path.Combine(Path.GetTempPath(), "meshbus-demo-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(data);

        var transcript = new StringWriter();
        var steps = new List<DemoStep>();
        void Say(string line)
        {
            transcript.WriteLine(line);
            if (!json)
            {
                console.Out.WriteLine(line);
            }
        }

        void Step(string name, bool ok, string detail)
        {
            steps.Add(new DemoStep(name, ok, detail));
            Say($"{(ok ? "ok  " : "FAIL")} {name}: {detail}");
        }

        await RunStepsAsync(data, Say, Step, cancellationToken);
        var passed = steps.Count > 0 && steps.All(s => s.Ok);
        Say(passed ? "demo: every step behaved as expected" : "demo: some steps did not behave as expected");
        var summary = JsonSerializer.Serialize(new { domain = Domain, dataDirectory = data, ok = passed, steps }, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true });
        if (json)
        {
            console.Out.WriteLine(summary);
        }

        if (outFile is not null)
        {
            await File.WriteAllTextAsync(outFile, json ? summary : transcript.ToString(), cancellationToken);
        }

        return passed ? 0 : 1;
    }

    private static async Task RunStepsAsync(string data, Action<string> say, Action<string, bool, string> step, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        var keyDir = Path.Combine(data, "keys");
        var keys = File.Exists(Path.Combine(keyDir, DomainKeys.KeySetFile))
            ? DomainKeys.Load(keyDir, KeyUsage.Credential)
            : DomainKeys.Load(DomainAdministration.Initialize(keyDir, Domain, now).DirectoryPath, KeyUsage.Credential);
        say($"domain {Domain}: key set {keys.KeySet.Sequence} in {keyDir}, data in {data}");
        var policyFile = WritePolicy(data, keyDir, now);
        say($"policy: {policyFile} (signed meshbus-policy/v1, epoch 1): allow deploy to k8s://cluster-a/ns/** for deployers; deny delete");

        var mesh = await EmbeddedMesh.StartAsync(new EmbeddedMeshOptions(Domain, data, keyDir, policyFile), ct);
        await using (mesh)
        {
            var bus = mesh.Bus;
            var lineage = mesh.Lineage;
            say($"workers started: {string.Join(", ", EmbeddedMesh.WorkerNames)} (in-memory transport)");

            var privateKey = Ed25519Keys.NewPrivateKey();
            var subject = Domain + "/agents/deployer";
            var credential = Credentials.Issue(
                new CredentialClaims(Domain, subject, "c-" + Guid.NewGuid().ToString("N")[..8], Base64Url.Encode(Ed25519Keys.PublicKeyOf(privateKey)),
                    new AgentAttributes("sha256:demo", "demo", "team-web", ["deployers"]), now, now, now.AddHours(1)),
                keys.Signer(KeyUsage.Credential, now));
            await using var agent = await MeshBusAgent.ConnectAsync(bus, new MeshBusAgentOptions
            {
                Subject = subject,
                HomeDomain = Domain,
                PrivateKey = privateKey,
                Credential = credential,
                KeyResolver = keys.LoadTrust(),
                DecisionTimeout = TimeSpan.FromSeconds(15),
            }, ct);
            say($"agent {subject} has a credential; it reads queue {agent.QueueName}");

            // 1. Allowed intent.
            var allowed = await SubmitAsync(agent, new IntentRequest("deploy", "k8s://cluster-a/ns/web") { MaxDuration = TimeSpan.FromMinutes(5) }, ct);
            var lease = allowed?.Lease;
            step("allowed intent", lease is not null, lease is not null
                ? $"grant {lease.Claims.GrantId} verified by the agent (lineage index {lease.Claims.LineageIndex}, lease {lease.Remaining().TotalSeconds:0} s)"
                : allowed?.Denial is { } d ? $"expected a grant, got {d.Reason}: {d.Detail}" : "no decision arrived");
            if (lease is not null)
            {
                await lease.StartAsync(ct);
                await lease.HeartbeatAsync();
                var executing = await WaitAsync(() => mesh.LifecycleStateAsync(lease.IntentId, ct), s => s == "Executing");
                step("execution started", executing, executing ? "ExecutionStarted and a heartbeat sent; saga Executing" : "saga did not reach Executing");
            }

            // 2. Denied intent.
            var denied = await SubmitAsync(agent, new IntentRequest("delete", "k8s://cluster-a/ns/web"), ct);
            step("denied intent", denied?.Denial is { RejectedByAgent: false }, denied?.Denial is { } dn
                ? $"denied {dn.Reason}: {dn.Detail}"
                : denied?.Lease is not null ? "expected a denial, got a grant" : "no decision arrived");

            // 3. Operator halt.
            if (lease is not null)
            {
                var halt = HaltCommand.Create(Domain, GovernanceScope.Execution, lease.IntentId.ToString(), "demo: operator halt", DateTimeOffset.UtcNow);
                say($"operator: meshbus halt --intent {lease.IntentId}");
                await bus.Publish(halt, ct);
                var cancelled = await WaitAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c);
                step("halt reaches the agent", cancelled, cancelled ? $"lease token cancelled ({lease.StopReason})" : "token not cancelled");
                var halted = await WaitAsync(() => mesh.LifecycleStateAsync(lease.IntentId, ct), s => s == "Halted");
                step("saga halted", halted, halted ? "ExecutionHalted acknowledged; saga Halted" : "saga not Halted");
                var recorded = await WaitAsync(() => lineage.GetByKeyAsync($"halted:{lease.IntentId:D}", ct), r => r is not null);
                step("halt in lineage", recorded, recorded ? $"halted:{lease.IntentId:D} recorded" : "ExecutionHalted not in lineage");
            }

            // 4. Evidence: export the allowed intent's bundle and verify it offline against the pinned root only.
            if (lease is not null)
            {
                await VerifyEvidenceAsync(data, keyDir, lease, say, step, ct);
            }

            // 5. Lineage verification.
            var head = await lineage.GetTreeHeadAsync(ct);
            var leaves = new List<byte[]>();
            for (var i = 0L; i < head.Size; i++)
            {
                leaves.Add((await lineage.GetAsync(i, ct))!.Data);
            }

            var rootOk = head.Size > 0 && MerkleTree.RootOf(leaves).AsSpan().SequenceEqual(head.RootHash);
            step("lineage verified", rootOk, $"{head.Size} entries, recomputed RFC 6962 root {(rootOk ? "matches" : "DIFFERS from")} {Convert.ToHexStringLower(head.RootHash)}");
        }
    }

    private static async Task VerifyEvidenceAsync(string data, string keyDir, Lease lease, Action<string> say, Action<string, bool, string> step, CancellationToken ct)
    {
        var grantFile = Path.Combine(data, "grant.jws");
        var evidence = Path.Combine(data, "evidence.json");
        var trustDir = Path.Combine(data, "pinned");
        await File.WriteAllTextAsync(grantFile, lease.Grant, ct);
        var id = lease.IntentId.ToString("D");
        var lineageDb = Path.Combine(data, "lineage.db");

        var (exported, exportOut) = await RunCliAsync(["proof", "export", "--intent", id, "--out", evidence, "--store", lineageDb, "--domain-dir", keyDir, "--grant", grantFile], ct);
        say($"operator: meshbus proof export --intent {id} --out {evidence}");
        step("evidence exported", exported == 0, exportOut.Trim().Split('\n')[^1]);
        var (pinned, _) = await RunCliAsync(["trust", "export", "--domain-dir", keyDir, "--format", "vkey", "--out", trustDir], ct);
        var (verified, verifyOut) = await RunCliAsync(["proof", "verify", evidence, "--trust", trustDir], ct);
        say($"auditor: meshbus proof verify {evidence} --trust {trustDir}");
        foreach (var line in verifyOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            say("    " + line);
        }

        step("evidence verified offline", pinned == 0 && verified == 0, verified == 0 ? "every check passed against the pinned root" : $"proof verify exited {verified}");

        // The same bundle with one byte of its grant changed must fail.
        var tampered = Path.Combine(data, "evidence-tampered.json");
        var text = await File.ReadAllTextAsync(evidence, ct);
        var at = text.IndexOf(lease.Grant, StringComparison.Ordinal) + lease.Grant.Length / 2;
        await File.WriteAllTextAsync(tampered, text[..at] + (text[at] == 'A' ? 'B' : 'A') + text[(at + 1)..], ct);
        var (rejected, _) = await RunCliAsync(["proof", "verify", tampered, "--trust", trustDir], ct);
        step("tampered evidence refused", rejected == 1, rejected == 1 ? "one changed byte in the grant: proof verify exits 1" : $"proof verify exited {rejected}");
    }

    private static async Task<(int ExitCode, string Output)> RunCliAsync(string[] args, CancellationToken ct)
    {
        var output = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, output, TextReader.Null), ct);
        return (code, output.ToString());
    }

    /// <summary>The demo domain's policy, signed with its grant key (any key of the domain's key set verifies a domain bundle).</summary>
    private static string WritePolicy(string data, string keyDir, DateTimeOffset now)
    {
        const string Bundle = """
            {
              "format": "meshbus-policy/v1",
              "scope": "domain",
              "domain": "acme.example/prod",
              "epoch": 1,
              "description": "Demo policy of acme.example/prod.",
              "rules": [
                {
                  "id": "allow-deploy-web",
                  "description": "Deployers may deploy the web namespaces for at most 30 minutes.",
                  "effect": "allow",
                  "match": { "actions": ["deploy"], "resources": ["k8s://cluster-a/ns/**"] },
                  "condition": "'deployers' in agent.claims.groups && intent.maxDurationSeconds <= 1800",
                  "obligations": { "maxLeaseSeconds": 120 }
                },
                {
                  "id": "deny-delete",
                  "description": "Nothing is deleted through the mesh.",
                  "effect": "deny",
                  "match": { "actions": ["delete"], "resources": ["**"] }
                }
              ]
            }
            """;
        var signer = DomainKeys.Load(keyDir, KeyUsage.Grant).Signer(KeyUsage.Grant, now);
        var path = Path.Combine(data, "policy.json");
        File.WriteAllText(path, PolicyBundleSigning.Sign(Bundle, signer));
        return path;
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

    private static async Task<bool> WaitAsync<T>(Func<Task<T>> probe, Func<T, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (done(await probe()))
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }

    private sealed record DemoStep(string Name, bool Ok, string Detail);
}
