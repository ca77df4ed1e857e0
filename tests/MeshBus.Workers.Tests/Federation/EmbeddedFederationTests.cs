using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Embedded;
using MeshBus.Federation;
using MeshBus.Ledger.Decisions;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MeshBus.Workers.Tests.Federation;

/// <summary>
/// Two domains in one process through the library's public API (<see cref="EmbeddedFederation"/>): each its own
/// in-memory bus, SQLite files and four workers, joined by the in-process link with the same bridge and relay table as
/// over NATS. The agent uses the SDK on its home bus only; everything else crosses through the bridges.
/// </summary>
public sealed class EmbeddedFederationTests : IDisposable
{
    private const string O = "acme.example/prod";
    private const string T = "globex.example/prod";
    private const string Federation = "acme-globex";
    private readonly string _data = Directory.CreateTempSubdirectory("meshbus-federation-").FullName;

    private static string SignedPolicy(string keyDir, string json, DateTimeOffset now) =>
        PolicyBundleSigning.Sign(json, DomainKeys.Load(keyDir, KeyUsage.Grant).Signer(KeyUsage.Grant, now));

    private async Task<EmbeddedMeshOptions> DomainAsync(string domain, string keyDir, string policy, string? egress, DateTimeOffset now)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_data, Subjects.Token(domain))).FullName;
        var policyFile = Path.Combine(dir, "policy.json");
        await File.WriteAllTextAsync(policyFile, SignedPolicy(keyDir, policy, now));
        string? egressFile = null;
        if (egress is not null)
        {
            egressFile = Path.Combine(dir, "egress.json");
            await File.WriteAllTextAsync(egressFile, SignedPolicy(keyDir, egress, now));
        }

        return new EmbeddedMeshOptions(domain, dir, keyDir, policyFile) { EgressPolicyBundleFile = egressFile };
    }

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition, CancellationToken bound)
    {
        while (!await condition())
        {
            await Task.Delay(50, bound);
        }

        return true;
    }

    private sealed record Started(EmbeddedFederation Federation, MeshBusAgent Agent) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Agent.DisposeAsync();
            await Federation.DisposeAsync();
        }
    }

    private async Task<Started> StartAsync(CancellationToken bound, string? federationBundle = null)
    {
        var now = DateTimeOffset.UtcNow;
        var originKeys = DomainAdministration.Initialize(Path.Combine(_data, "keys-o"), O, now).DirectoryPath;
        var targetKeys = DomainAdministration.Initialize(Path.Combine(_data, "keys-t"), T, now).DirectoryPath;
        EmbeddedFederation.PinEachOther([originKeys, targetKeys], now);
        var origin = await DomainAsync(O, originKeys, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{O}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["**"]}}]}
            """, $$$"""
            {"format":"meshbus-policy/v1","scope":"egress","domain":"{{{O}}}","epoch":1,
             "rules":[{"id":"deploy-to-globex","effect":"allow","match":{"actions":["deploy"],"resources":["**"]},
                       "condition":"target.domain == '{{{T}}}'"}]}
            """, now);
        var target = await DomainAsync(T, targetKeys, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{T}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://globex/**"]},
                       "condition":"'deployers' in agent.claims.groups","obligations":{"maxLeaseSeconds":20}}]}
            """, null, now);

        if (federationBundle is not null)
        {
            // The federation's bundle, signed by both roots, installed by the origin's operator only; both domains are
            // members (Sync and Authorize know the federation's name).
            var file = Path.Combine(_data, "federation.policy.json");
            var signed = PolicyBundleSigning.SignAsRoot(PolicyBundleSigning.SignAsRoot(federationBundle,
                DomainAdministration.ReadRoot(originKeys)), DomainAdministration.ReadRoot(targetKeys));
            await File.WriteAllTextAsync(file, signed, bound);
            var member = new Dictionary<string, string?> { ["Sync:FederationName"] = Federation, ["Authorize:FederationName"] = Federation };
            origin = origin with { Settings = new Dictionary<string, string?>(member) { ["Sync:FederationPolicyBundleFile"] = file } };
            target = target with { Settings = member };
        }

        var federation = await EmbeddedFederation.StartAsync([origin, target], bound);
        try
        {
            var agentKey = Ed25519Keys.NewPrivateKey();
            var subject = O + "/agents/deployer";
            var originDomainKeys = DomainKeys.Load(originKeys, KeyUsage.Credential);
            var credential = Credentials.Issue(new CredentialClaims(O, subject, "c-1", Base64Url.Encode(Ed25519Keys.PublicKeyOf(agentKey)),
                new AgentAttributes("sha256:test", "test", "team-web", ["deployers"]), now, now, now.AddHours(1)), originDomainKeys.Signer(KeyUsage.Credential, now));
            var agent = await MeshBusAgent.ConnectAsync(federation[O].Bus, new MeshBusAgentOptions
            {
                Subject = subject,
                HomeDomain = O,
                PrivateKey = agentKey,
                Credential = credential,
                // The home domain's trust config: it pins the target's root, so the SDK verifies the target's grants.
                KeyResolver = originDomainKeys.LoadTrust(),
                HeartbeatInterval = TimeSpan.FromHours(1), // heartbeats are sent by the tests
                DecisionTimeout = TimeSpan.FromSeconds(60),
            }, bound);
            return new Started(federation, agent);
        }
        catch
        {
            await federation.DisposeAsync();
            throw;
        }
    }

    private static async Task<Lease> GrantedAndStartedAsync(Started x, CancellationToken bound)
    {
        var outcome = await x.Agent.SubmitIntentAsync(new IntentRequest("deploy", "k8s://globex/ns/web") { TargetDomain = T, MaxDuration = TimeSpan.FromMinutes(5) }, bound);
        Assert.True(outcome.Lease is not null, outcome.Denial is { } d ? $"denied {d.Reason}: {d.Detail}" : "no lease");
        var lease = outcome.Lease!;
        await lease.StartAsync(bound);
        await EventuallyAsync(async () => await x.Federation[T].LifecycleStateAsync(lease.IntentId, bound) == "Executing", bound);
        return lease;
    }

    [Theory(Timeout = 180_000)]
    [InlineData(O)]
    [InlineData(T)]
    public async Task An_operator_halt_in_either_domain_reaches_the_agent_and_the_targets_execution_record(string haltingDomain)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        await using var x = await StartAsync(bound.Token);
        var lease = await GrantedAndStartedAsync(x, bound.Token);

        await x.Federation[haltingDomain].Bus.Publish(new HaltExecution(Guid.NewGuid(), haltingDomain, GovernanceScope.Execution, lease.IntentId.ToString(),
            GovernanceReason.OperatorHalt, "test: operator halt in " + haltingDomain, DateTimeOffset.UtcNow)
        { IntentId = lease.IntentId }, bound.Token);

        await EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), bound.Token);
        Assert.Equal(GovernanceReason.OperatorHalt, lease.StopReason);
        // The agent's ExecutionHalted crosses to the target, whose record of the execution ends Halted; both lineages hold it.
        await EventuallyAsync(async () => await x.Federation[T].LifecycleStateAsync(lease.IntentId, bound.Token) == "Halted", bound.Token);
        foreach (var mesh in x.Federation.Domains)
        {
            await EventuallyAsync(async () => await mesh.Lineage.GetByKeyAsync($"halted:{lease.IntentId:D}", bound.Token) is not null, bound.Token);
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task A_cross_domain_intent_is_granted_renewed_by_heartbeat_and_completed_across_two_embedded_domains()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        await using var x = await StartAsync(bound.Token);
        var (federation, home, resourceDomain) = (x.Federation, x.Federation[O], x.Federation[T]);

        // Intent → grant: decided and recorded by the target, delivered by the home domain, verified by the SDK.
        var lease = await GrantedAndStartedAsync(x, bound.Token);
        Assert.Equal(T, lease.Claims.Issuer);
        Assert.True(DecisionRecord.Parse((await resourceDomain.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(lease.IntentId), bound.Token))!.Data).Allowed);
        Assert.Equal(DecisionRecord.EgressKind, DecisionRecord.Parse((await home.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(lease.IntentId), bound.Token))!.Data).Kind);

        // Heartbeat → renewal through the target.
        // Enforce asks for a renewal once less than half of the 20 s lease remains: heartbeat each second until then.
        var renewalBefore = lease.Claims.Renewal;
        while (lease.Claims.Renewal == renewalBefore && !lease.Token.IsCancellationRequested)
        {
            await lease.HeartbeatAsync();
            await Task.Delay(TimeSpan.FromSeconds(1), bound.Token);
        }

        Assert.True(lease.Claims.Renewal > renewalBefore, $"the lease ended without a renewal: {lease.StopReason} {lease.StopDetail}");
        Assert.Equal(T, lease.Claims.Issuer);
        Assert.False(lease.Token.IsCancellationRequested);

        // Complete: the target's execution record ends Completed.
        await lease.CompleteAsync("done", bound.Token);
        await EventuallyAsync(async () => await resourceDomain.LifecycleStateAsync(lease.IntentId, bound.Token) == "Completed", bound.Token);
        foreach (var mesh in federation.Domains)
        {
            Assert.Equal(0, mesh.Services.GetRequiredService<FederationBridge>().Counters.DroppedTotal);
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task A_federation_policy_installed_in_one_domain_reaches_the_other_over_the_bridge_and_both_decide_under_it()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        await using var x = await StartAsync(bound.Token, $$$"""
            {"format":"meshbus-policy/v1","scope":"federation","domain":"{{{Federation}}}","epoch":3,
             "rules":[{"id":"baseline","effect":"allow","match":{"actions":["*"],"resources":["**"]}},
                      {"id":"no-deletes-across-the-federation","effect":"deny","match":{"actions":["delete"],"resources":["**"]}}]}
            """);

        // The target's operator installed nothing: its Sync adopts what the origin's relayed, and announces it.
        var targetSync = x.Federation[T].Services.GetRequiredService<MeshBus.Workers.Sync.IAppliedGovernance>();
        await EventuallyAsync(() => Task.FromResult(targetSync.Epoch(MeshBus.Contracts.PolicyScope.Federation) == 3), bound.Token);

        // The target acknowledges the epoch once its Authorize replica decides under it; the origin records that.
        var originPeers = x.Federation[O].Services.GetRequiredService<MeshBus.Persistence.IPeerSyncStore>();
        await EventuallyAsync(async () => await originPeers.AcknowledgedAsync(T, Federation, nameof(MeshBus.Contracts.PolicyScope.Federation), bound.Token) is { Epoch: 3 },
            bound.Token);

        var lease = await GrantedAndStartedAsync(x, bound.Token);

        // Both decided under it: the target's grant names it, and it is the origin's.
        var named = Assert.Single(lease.Claims.Policies, p => p.Scope == MeshBus.Contracts.PolicyScope.Federation);
        Assert.Equal((Federation, 3L), (named.Domain, named.Epoch));
        Assert.Equal(x.Federation[O].Services.GetRequiredService<MeshBus.Workers.Sync.IAppliedGovernance>().Digest(MeshBus.Contracts.PolicyScope.Federation), named.Digest);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may still hold a file a moment after the hosts stopped; the temporary directory is left behind.
        }
    }
}
