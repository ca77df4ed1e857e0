using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MassTransit;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Embedded;
using MeshBus.Federation;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Sync.Federation;
using Microsoft.Extensions.DependencyInjection;

// Governance-sync benchmarks of issue 18, on two embedded domains joined by the in-process bridge (the same envelopes,
// checks, relay table, watchdogs and SDK as in a fleet; no NATS hop):
//   propagation: a federation epoch adopted in acme → partner's PolicySynced for it back at acme, over N pushes;
//   halt latency: M cross-domain executions running, the bridge stalls both ways, acme's watchdog deadline passes
//                 (TrustLapsed) → every execution's SDK token cancelled (the peer-scoped halt fanned out by Enforce).
//   halts dropped: acme never lapses, partner's halt is held on the stalled bridge: every lease ends by its own expiry.
// Usage: dotnet run -c Release --project bench/MeshBus.SyncBench -- [--pushes 200] [--executions 1000] [--dropped-executions 200] [--json FILE]
var pushes = Option("--pushes", 200);
var executions = Option("--executions", 1000);
var droppedExecutions = Option("--dropped-executions", 200);
var jsonOut = args.SkipWhile(a => a != "--json").Skip(1).FirstOrDefault();
const string Acme = "acme.example/prod";
const string Partner = "partner.example/prod";
const string Federation = "acme-partner";
var stallAfter = TimeSpan.FromSeconds(3);

var data = Directory.CreateTempSubdirectory("meshbus-syncbench-").FullName;
try
{
    var now = DateTimeOffset.UtcNow;
    var acmeKeys = DomainAdministration.Initialize(Path.Combine(data, "keys-acme"), Acme, now).DirectoryPath;
    var partnerKeys = DomainAdministration.Initialize(Path.Combine(data, "keys-partner"), Partner, now).DirectoryPath;
    EmbeddedFederation.PinEachOther([acmeKeys, partnerKeys], now);
    string FederationBundle(long epoch) => PolicyBundleSigning.SignAsRoot(PolicyBundleSigning.SignAsRoot($$$"""
        {"format":"meshbus-policy/v1","scope":"federation","domain":"{{{Federation}}}","epoch":{{{epoch}}},
         "rules":[{"id":"baseline","effect":"allow","match":{"actions":["*"],"resources":["**"]}},
                  {"id":"no-delete-epoch-{{{epoch}}}","effect":"deny","match":{"actions":["delete"],"resources":["**"]}}]}
        """, DomainAdministration.ReadRoot(acmeKeys)), DomainAdministration.ReadRoot(partnerKeys));
    var federationFile = Path.Combine(data, "federation.json");
    await File.WriteAllTextAsync(federationFile, FederationBundle(1));

    var settings = new Dictionary<string, string?>
    {
        ["Sync:HeartbeatInterval"] = "00:00:00.5",
        ["Sync:PeerStallAfter"] = stallAfter.ToString("c", CultureInfo.InvariantCulture),
        ["Sync:FederationName"] = Federation,
        ["Authorize:FederationName"] = Federation,
        ["Authorize:HeartbeatBoundSeconds"] = "2",
        ["Authorize:ReplicaReportSeconds"] = "0.5",
        ["Enforce:HeartbeatTimeout"] = "00:10:00",
    };
    EmbeddedMeshOptions Domain(string run, string domain, string keys, string policy, string? egress, IReadOnlyDictionary<string, string?> extra)
    {
        var dir = Directory.CreateDirectory(Path.Combine(data, run, Subjects.Token(domain))).FullName;
        string Signed(string name, string json)
        {
            var file = Path.Combine(dir, name);
            File.WriteAllText(file, PolicyBundleSigning.Sign(json, DomainKeys.Load(keys, KeyUsage.Grant).Signer(KeyUsage.Grant, now)));
            return file;
        }

        return new EmbeddedMeshOptions(domain, dir, keys, Signed("policy.json", policy))
        {
            EgressPolicyBundleFile = egress is null ? null : Signed("egress.json", egress),
            Settings = new Dictionary<string, string?>(settings.Where(p => !extra.ContainsKey(p.Key)).Concat(extra)),
        };
    }

    async Task<EmbeddedFederation> StartAsync(string name, TimeSpan acmeStallAfter, int leaseSeconds)
    {
        var acmeSettings = new Dictionary<string, string?>
        {
            ["Sync:FederationPolicyBundleFile"] = federationFile,
            ["Sync:PeerStallAfter"] = acmeStallAfter.ToString("c", CultureInfo.InvariantCulture),
        };
        var acmeOptions = Domain(name, Acme, acmeKeys, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{Acme}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://acme/**"]}}]}
            """, $$$"""
            {"format":"meshbus-policy/v1","scope":"egress","domain":"{{{Acme}}}","epoch":1,
             "rules":[{"id":"deploy-to-partner","effect":"allow","match":{"actions":["deploy"],"resources":["**"]},"condition":"target.domain == '{{{Partner}}}'"}]}
            """, acmeSettings);
        var partnerOptions = Domain(name, Partner, partnerKeys, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{Partner}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://partner/**"]},"obligations":{"maxLeaseSeconds":{{{leaseSeconds}}}}}]}
            """, null, new Dictionary<string, string?>());
        Console.Error.WriteLine($"starting {Acme} and {Partner} (embedded, in-process bridge) in {data}/{name}");
        return await EmbeddedFederation.StartAsync([acmeOptions, partnerOptions]);
    }

    async Task<(MeshBusAgent Agent, List<Lease> Leases, double Seconds)> RunningAsync(EmbeddedFederation federation, int count, TimeSpan heartbeat)
    {
        var agentKey = Ed25519Keys.NewPrivateKey();
        var subject = Acme + "/agents/bench";
        var acmeDomainKeys = DomainKeys.Load(acmeKeys, KeyUsage.Credential);
        var credential = Credentials.Issue(new CredentialClaims(Acme, subject, "c-" + Guid.NewGuid().ToString("N")[..8], Base64Url.Encode(Ed25519Keys.PublicKeyOf(agentKey)),
            new AgentAttributes("sha256:bench", "bench", "team", ["deployers"]), now, now, now.AddHours(1)), acmeDomainKeys.Signer(KeyUsage.Credential, now));
        var agent = await MeshBusAgent.ConnectAsync(federation[Acme].Bus, new MeshBusAgentOptions
        {
            Subject = subject,
            HomeDomain = Acme,
            PrivateKey = agentKey,
            Credential = credential,
            KeyResolver = acmeDomainKeys.LoadTrust(),
            HeartbeatInterval = heartbeat,
            DecisionTimeout = TimeSpan.FromSeconds(120),
        });
        var leases = new ConcurrentBag<Lease>();
        var granting = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            var outcome = await agent.SubmitIntentAsync(new IntentRequest("deploy", $"k8s://partner/ns/app-{i}") { TargetDomain = Partner, MaxDuration = TimeSpan.FromMinutes(10) }, ct);
            var lease = outcome.Lease ?? throw new InvalidOperationException($"intent {i} denied: {outcome.Denial?.Reason} {outcome.Denial?.Detail}");
            await lease.StartAsync(ct);
            leases.Add(lease);
        });
        Console.Error.WriteLine($"{count} cross-domain executions running after {granting.Elapsed.TotalSeconds:0.0} s");
        return (agent, [.. leases], granting.Elapsed.TotalSeconds);
    }

    await using var federation = await StartAsync("halts", stallAfter, 600);
    var (acme, partner) = (federation[Acme], federation[Partner]);
    // When acme's bus takes partner's acknowledgement of an epoch, and acme's lapse of trust in partner.
    var acknowledged = new ConcurrentDictionary<long, TaskCompletionSource<long>>();
    var lapsed = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
    acme.Bus.ConnectConsumeObserver(new Watch(acknowledged, lapsed));
    var distributor = acme.Services.GetRequiredService<FederationPolicyDistributor>();
    await Until(() => acknowledged.TryGetValue(1, out var first) && first.Task.IsCompleted, TimeSpan.FromSeconds(60), "partner's acknowledgement of epoch 1");

    // 1. Propagation: adopt epoch e in acme, publish it, wait for partner's PolicySynced(e) at acme.
    const int WarmUp = 10;
    var propagation = new List<double>();
    for (var epoch = 2L; epoch < 2 + WarmUp + pushes; epoch++)
    {
        var bundle = FederationBundle(epoch);
        var waiter = acknowledged.GetOrAdd(epoch, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously));
        var start = Stopwatch.GetTimestamp();
        distributor.Adopt(bundle, "benchmark");
        await distributor.PublishAsync(default);
        var at = await waiter.Task.WaitAsync(TimeSpan.FromSeconds(30));
        if (epoch >= 2 + WarmUp)
        {
            propagation.Add(Stopwatch.GetElapsedTime(start, at).TotalMilliseconds);
        }
    }

    Console.Error.WriteLine($"propagation over {pushes} pushes: p50 {P(propagation, 50):0.0} ms, p99 {P(propagation, 99):0.0} ms");

    // 2. Halt latency: M cross-domain executions running; the bridge stalls; acme's watchdog lapses partner.
    var (agent, leases, _) = await RunningAsync(federation, executions, TimeSpan.FromMinutes(5));
    await using var __ = agent;
    var cancelled = new ConcurrentBag<long>();
    foreach (var lease in leases)
    {
        lease.Token.Register(() => cancelled.Add(Stopwatch.GetTimestamp()));
    }

    var stalledAt = Stopwatch.GetTimestamp();
    federation.Network.Stall(Acme, Partner);
    federation.Network.Stall(Partner, Acme);
    var lapseAt = await lapsed.Task.WaitAsync(TimeSpan.FromSeconds(60));
    await Until(() => cancelled.Count >= executions, TimeSpan.FromSeconds(120), "every execution's token cancelled");
    var halts = cancelled.Select(t => Stopwatch.GetElapsedTime(lapseAt, t).TotalMilliseconds).ToList();
    var stopped = leases.GroupBy(l => l.StopReason).ToDictionary(g => g.Key.ToString(), g => g.Count());
    Console.Error.WriteLine($"stall → lapse {Stopwatch.GetElapsedTime(stalledAt, lapseAt).TotalSeconds:0.00} s (bound {stallAfter.TotalSeconds} s after the last heartbeat); " +
        $"lapse → token cancelled over {halts.Count}: p50 {P(halts, 50):0} ms, p99 {P(halts, 99):0} ms, max {halts.Max():0} ms; stop reasons {string.Join(", ", stopped.Select(p => $"{p.Key} {p.Value}"))}");

    // 3. Halts dropped on purpose: acme never lapses partner (its bound is 10 min), so no halt is ordered at home; the one
    // partner orders is held on the stalled bridge, and so are the renewals. Every lease must still end by its own expiry.
    await using var dropped = await StartAsync("dropped", TimeSpan.FromMinutes(10), 8);
    var (droppedAgent, droppedLeases, _) = await RunningAsync(dropped, droppedExecutions, TimeSpan.FromSeconds(2));
    await using var ___ = droppedAgent;
    var ended = new ConcurrentBag<double>();
    var endedAt = new ConcurrentBag<long>();
    foreach (var lease in droppedLeases)
    {
        lease.Token.Register(() =>
        {
            endedAt.Add(Stopwatch.GetTimestamp());
            ended.Add((DateTimeOffset.UtcNow - (lease.Claims.ExpiresAt - TimeSpan.FromSeconds(2))).TotalMilliseconds);
        });
    }

    var droppedStalledAt = Stopwatch.GetTimestamp();
    dropped.Network.Stall(Acme, Partner);
    dropped.Network.Stall(Partner, Acme);
    await Until(() => ended.Count >= droppedExecutions, TimeSpan.FromSeconds(120), "every lease ended by its own expiry");
    var late = ended.ToList();
    var afterStall = endedAt.Select(t => Stopwatch.GetElapsedTime(droppedStalledAt, t).TotalMilliseconds).ToList();
    var droppedStops = droppedLeases.GroupBy(l => l.StopReason).ToDictionary(g => g.Key.ToString(), g => g.Count());
    Console.Error.WriteLine($"halts dropped: {droppedExecutions} leases (8 s) ended {P(afterStall, 50):0} ms (p50) / {afterStall.Max():0} ms (max) after the stall, " +
        $"{P(late, 50):0} ms (p50) / {P(late, 99):0} ms (p99) after their grant's expiry less the agent's skew (the agent counts a lease from its receipt); " +
        $"stop reasons {string.Join(", ", droppedStops.Select(p => $"{p.Key} {p.Value}"))}");

    var result = new
    {
        machine = new { Environment.ProcessorCount, loadAverage = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "" },
        propagation = new { pushes, warmUp = WarmUp, p50Ms = P(propagation, 50), p99Ms = P(propagation, 99), maxMs = propagation.Max() },
        halt = new
        {
            executions,
            stallAfterSeconds = stallAfter.TotalSeconds,
            stallToLapseSeconds = Stopwatch.GetElapsedTime(stalledAt, lapseAt).TotalSeconds,
            p50Ms = P(halts, 50),
            p99Ms = P(halts, 99),
            maxMs = halts.Max(),
            stopReasons = stopped,
        },
        haltsDropped = new
        {
            executions = droppedExecutions,
            leaseSeconds = 8,
            endedAfterStallP50Ms = P(afterStall, 50),
            endedAfterStallMaxMs = afterStall.Max(),
            endedAfterExpiryP50Ms = P(late, 50),
            endedAfterExpiryP99Ms = P(late, 99),
            endedAfterExpiryMaxMs = late.Max(),
            stopReasons = droppedStops,
        },
    };
    var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
    Console.WriteLine(json);
    if (jsonOut is not null)
    {
        await File.WriteAllTextAsync(jsonOut, json);
    }

    return 0;
}
finally
{
    try
    {
        Directory.Delete(data, recursive: true);
    }
    catch (IOException)
    {
    }
}

int Option(string name, int fallback)
{
    var value = args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
    return value is null ? fallback : int.Parse(value, CultureInfo.InvariantCulture);
}

static double P(List<double> values, int percentile)
{
    var sorted = values.Order().ToList();
    return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
}

static async Task Until(Func<bool> condition, TimeSpan bound, string what)
{
    var deadline = Stopwatch.GetTimestamp() + (long)(bound.TotalSeconds * Stopwatch.Frequency);
    while (!condition())
    {
        if (Stopwatch.GetTimestamp() > deadline)
        {
            throw new TimeoutException($"timed out after {bound.TotalSeconds} s waiting for {what}");
        }

        await Task.Delay(5);
    }
}

/// <summary>Sees, on acme's bus, partner's federation acknowledgements and acme's lapse of trust in partner.</summary>
internal sealed class Watch(ConcurrentDictionary<long, TaskCompletionSource<long>> acknowledged, TaskCompletionSource<long> lapsed) : IConsumeObserver
{
    public Task PreConsume<T>(ConsumeContext<T> context)
        where T : class
    {
        var at = Stopwatch.GetTimestamp();
        switch (context.Message)
        {
            case PolicySynced { Domain: "partner.example/prod", Scope: PolicyScope.Federation } synced:
                acknowledged.GetOrAdd(synced.Epoch, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(at);
                break;
            case TrustLapsed { Domain: "acme.example/prod", Subject: "partner.example/prod" }:
                lapsed.TrySetResult(at);
                break;
        }

        return Task.CompletedTask;
    }

    public Task PostConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
