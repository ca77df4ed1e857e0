using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Embedded;
using MeshBus.Federation;
using MeshBus.Ledger.Decisions;
using MeshBus.Policy.Bundles;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using NATS.Net;
using Xunit;

namespace MeshBus.Integration.Tests.Federation;

/// <summary>
/// The whole cross-domain lifecycle over real NATS JetStream: two domains in this process, each with all four workers on
/// its own bus and SQLite files (<see cref="EmbeddedFederation"/>), joined by <see cref="NatsFederationLink"/> as each
/// domain's own NATS user (scripts/nats-test-config.sh). The agent uses the SDK on its home bus only.
/// </summary>
[Collection("nats-postgres")]
[Trait("Category", "Integration")]
public sealed class NatsEmbeddedFederationTests(NatsFixture nats) : IAsyncLifetime
{
    private readonly string _data = Directory.CreateTempSubdirectory("meshbus-nats-federation-").FullName;
    private static string O => NatsDomainUsers.Origin.Domain;
    private static string T => NatsDomainUsers.Target.Domain;

    private NatsFederationLink LinkFor(string domain)
    {
        var user = domain == O ? NatsDomainUsers.Origin : NatsDomainUsers.Target;
        return new NatsFederationLink(domain, new NatsFederationLinkOptions { Url = nats.Url, User = user.User, Password = user.Password },
            NullLogger<NatsFederationLink>.Instance);
    }

    private async Task<EmbeddedMeshOptions> DomainAsync(string domain, string keyDir, string policy, string? egress, DateTimeOffset now)
    {
        var dir = Directory.CreateDirectory(Path.Combine(_data, Subjects.Token(domain))).FullName;
        var signer = DomainKeys.Load(keyDir, KeyUsage.Grant).Signer(KeyUsage.Grant, now);
        var policyFile = Path.Combine(dir, "policy.json");
        await File.WriteAllTextAsync(policyFile, PolicyBundleSigning.Sign(policy, signer));
        string? egressFile = null;
        if (egress is not null)
        {
            egressFile = Path.Combine(dir, "egress.json");
            await File.WriteAllTextAsync(egressFile, PolicyBundleSigning.Sign(egress, signer));
        }

        return new EmbeddedMeshOptions(domain, dir, keyDir, policyFile) { EgressPolicyBundleFile = egressFile };
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, CancellationToken bound)
    {
        while (!await condition())
        {
            await Task.Delay(50, bound);
        }
    }

    [Fact(Timeout = 240_000)]
    public async Task Over_jetstream_a_cross_domain_intent_is_granted_renewed_completed_another_halted_from_the_origin_and_denials_come_from_either_policy()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(200));
        var now = DateTimeOffset.UtcNow;
        var originKeys = DomainAdministration.Initialize(Path.Combine(_data, "keys-o"), O, now).DirectoryPath;
        var targetKeys = DomainAdministration.Initialize(Path.Combine(_data, "keys-t"), T, now).DirectoryPath;
        EmbeddedFederation.PinEachOther([originKeys, targetKeys], now);
        var origin = await DomainAsync(O, originKeys, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{O}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["**"]}}]}
            """, $$$"""
            {"format":"meshbus-policy/v1","scope":"egress","domain":"{{{O}}}","epoch":1,
             "rules":[{"id":"deploy-to-target","effect":"allow","match":{"actions":["deploy"],"resources":["**"]},
                       "condition":"target.domain == '{{{T}}}'"}]}
            """, now);
        var target = await DomainAsync(T, targetKeys, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{T}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://target/**"]},
                       "condition":"'deployers' in agent.claims.groups","obligations":{"maxLeaseSeconds":20}}]}
            """, null, now);
        await using var federation = await EmbeddedFederation.StartAsync([origin, target], LinkFor, bound.Token);

        var agentKey = Ed25519Keys.NewPrivateKey();
        var subject = O + "/agents/deployer";
        var originDomainKeys = DomainKeys.Load(originKeys, KeyUsage.Credential);
        var credential = Credentials.Issue(new CredentialClaims(O, subject, "c-1", Base64Url.Encode(Ed25519Keys.PublicKeyOf(agentKey)),
            new AgentAttributes("sha256:test", "test", "team-web", ["deployers"]), now, now, now.AddHours(1)), originDomainKeys.Signer(KeyUsage.Credential, now));
        await using var agent = await MeshBusAgent.ConnectAsync(federation[O].Bus, new MeshBusAgentOptions
        {
            Subject = subject,
            HomeDomain = O,
            PrivateKey = agentKey,
            Credential = credential,
            KeyResolver = originDomainKeys.LoadTrust(),
            HeartbeatInterval = TimeSpan.FromHours(1), // heartbeats are sent by the test
            DecisionTimeout = TimeSpan.FromSeconds(90),
        }, bound.Token);

        async Task<Lease> StartedLeaseAsync()
        {
            var outcome = await agent.SubmitIntentAsync(new IntentRequest("deploy", "k8s://target/ns/web") { TargetDomain = T, MaxDuration = TimeSpan.FromMinutes(5) }, bound.Token);
            Assert.True(outcome.Lease is not null, outcome.Denial is { } d ? $"denied {d.Reason}: {d.Detail}" : "no lease");
            await outcome.Lease!.StartAsync(bound.Token);
            await EventuallyAsync(async () => await federation[T].LifecycleStateAsync(outcome.Lease.IntentId, bound.Token) == "Executing", bound.Token);
            return outcome.Lease;
        }

        // Grant decided and recorded by the target (the origin records its egress decision), renewed through the target, completed.
        var lease = await StartedLeaseAsync();
        Assert.Equal(T, lease.Claims.Issuer);
        Assert.True(DecisionRecord.Parse((await federation[T].Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(lease.IntentId), bound.Token))!.Data).Allowed);
        Assert.Equal(DecisionRecord.EgressKind, DecisionRecord.Parse((await federation[O].Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(lease.IntentId), bound.Token))!.Data).Kind);
        var renewalBefore = lease.Claims.Renewal;
        while (lease.Claims.Renewal == renewalBefore && !lease.Token.IsCancellationRequested)
        {
            await lease.HeartbeatAsync();
            await Task.Delay(TimeSpan.FromSeconds(1), bound.Token);
        }

        Assert.True(lease.Claims.Renewal > renewalBefore, $"the lease ended without a renewal: {lease.StopReason} {lease.StopDetail}");
        await lease.CompleteAsync("done", bound.Token);
        await EventuallyAsync(async () => await federation[T].LifecycleStateAsync(lease.IntentId, bound.Token) == "Completed", bound.Token);

        // An operator halt in the origin reaches the agent; the target's record ends Halted; both lineages hold it.
        var halted = await StartedLeaseAsync();
        await federation[O].Bus.Publish(new HaltExecution(Guid.NewGuid(), O, GovernanceScope.Execution, halted.IntentId.ToString(),
            GovernanceReason.OperatorHalt, "test: operator halt", DateTimeOffset.UtcNow)
        { IntentId = halted.IntentId }, bound.Token);
        await EventuallyAsync(() => Task.FromResult(halted.Token.IsCancellationRequested), bound.Token);
        await EventuallyAsync(async () => await federation[T].LifecycleStateAsync(halted.IntentId, bound.Token) == "Halted", bound.Token);
        // Denied by the target's policy (no rule for that resource): decided and recorded by the target, answered over the bridge.
        var byTarget = await agent.SubmitIntentAsync(new IntentRequest("deploy", "k8s://elsewhere/ns/web") { TargetDomain = T }, bound.Token);
        Assert.True(byTarget.Denial is { RejectedByAgent: false }, "expected the target's denial");
        Assert.Equal(GovernanceReason.NoMatchingRule, byTarget.Denial!.Reason);
        Assert.False(DecisionRecord.Parse((await federation[T].Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(byTarget.Denial!.IntentId), bound.Token))!.Data).Allowed);
        // Denied by the origin's egress policy: never crosses, so the target has no record of it.
        var byEgress = await agent.SubmitIntentAsync(new IntentRequest("delete", "k8s://target/ns/web") { TargetDomain = T }, bound.Token);
        Assert.True(byEgress.Denial is { RejectedByAgent: false }, "expected the origin's egress denial");
        Assert.Equal(GovernanceReason.NoMatchingRule, byEgress.Denial!.Reason);
        Assert.Null(await federation[T].Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(byEgress.Denial!.IntentId), bound.Token));

        foreach (var mesh in federation.Domains)
        {
            await EventuallyAsync(async () => await mesh.Lineage.GetByKeyAsync($"halted:{halted.IntentId:D}", bound.Token) is not null, bound.Token);
            Assert.Equal(0, mesh.Services.GetRequiredService<FederationBridge>().Counters.DroppedTotal);
        }
    }

    public Task InitializeAsync() => DeleteStreamsAsync();

    public async Task DisposeAsync()
    {
        await DeleteStreamsAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may still hold a file a moment after the hosts stopped; the temporary directory is left behind.
        }
    }

    private async Task DeleteStreamsAsync()
    {
        await using var admin = await nats.ConnectAsync();
        var js = admin.CreateJetStreamContext();
        foreach (var domain in new[] { O, T })
        {
            try
            {
                await js.DeleteStreamAsync(Subjects.Stream(domain));
            }
            catch (NatsJSApiException)
            {
                // not there
            }
        }
    }
}
