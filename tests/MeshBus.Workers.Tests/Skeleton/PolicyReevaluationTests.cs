using System.Collections.Concurrent;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Workers.Enforce.Lifecycle;
using MeshBus.Workers.Tests.Sync;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>
/// Issue 18, re-evaluation: when the domain applied a new epoch of its policy (its own signed <c>PolicySynced</c>, sent
/// only once every Authorize replica loaded it), Enforce re-evaluates every running execution the domain decided; one the
/// new policy denies is halted <c>PolicyRevoked</c>, acknowledged by the agent and recorded in lineage.
/// </summary>
public sealed class PolicyReevaluationTests
{
    private static readonly IntentRequest Deploy = new("deploy", "k8s://cluster-a/ns/web") { MaxDuration = TimeSpan.FromMinutes(5) };

    /// <summary>What the mesh publishes from now on, and an agent's granted execution that the saga sees running.</summary>
    private static async Task<(ConcurrentQueue<object> Published, MeshBusAgent Agent, Lease Lease)> RunningAsync(SkeletonHarness mesh)
    {
        var published = new ConcurrentQueue<object>();
        mesh.Bus.ConnectPublishObserver(new PublishedMessages(published));
        var agent = await mesh.AgentAsync();
        var lease = (await agent.SubmitIntentAsync(Deploy)).Lease!;
        await lease.StartAsync();
        await mesh.SagaInStateAsync(lease.IntentId, "Executing");
        return (published, agent, lease);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_newly_applied_epoch_re_evaluates_a_running_execution_and_one_now_denied_is_halted_policy_revoked_in_lineage()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var (published, agent, lease) = await RunningAsync(mesh);
        var signer = GovernanceSigner.FromDirectory(mesh.Keys.DirectoryPath, mesh.Clock);
        const string D = SkeletonHarness.Domain;

        // The epoch the grant was decided under (1) re-evaluates nothing; epoch 2 re-evaluates it, once.
        await mesh.Bus.Publish(signer.Sign(new PolicySynced(D, D, PolicyScope.Domain, 1, "sha256:01", mesh.Clock.GetUtcNow())));
        await mesh.Bus.Publish(signer.Sign(new PolicySynced(D, D, PolicyScope.Domain, 2, "sha256:02", mesh.Clock.GetUtcNow())));
        var evaluate = await SkeletonHarness.EventuallyAsync(
            () => Task.FromResult(published.OfType<EvaluateIntent>().Where(e => e.IntentId == lease.IntentId).ToList()), l => l.Count > 0, "the re-evaluation");
        var request = Assert.Single(evaluate);
        Assert.Equal((EvaluationKind.Reevaluation, 1), (request.Kind, request.Renewal));
        Assert.Equal(2, (await mesh.SagaAsync(lease.IntentId))!.PolicyEpoch);

        // Authorize decides the re-evaluation under epoch 2 (tests/…/Authorize/RenewalTests cover that path): denied.
        var now = mesh.Clock.GetUtcNow();
        var denied = AgentNotices.Sign(new GrantDenied(lease.IntentId, D, agent.Subject, GovernanceReason.PolicyRevoked, "epoch 2: no rule allows deploy", 9, []),
            mesh.Keys.Signer(KeyUsage.Grant, now), now);
        await mesh.Bus.Publish(denied);

        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c, "the agent's lease cancelled by the halt");
        var halted = await mesh.SagaInStateAsync(lease.IntentId, "Halted");
        Assert.Equal(GovernanceReason.PolicyRevoked, halted!.Reason);
        Assert.NotNull(await mesh.LineageKeyAsync($"halted:{lease.IntentId:D}"));
    }

    [Fact(Timeout = 60_000)]
    public async Task An_acknowledgement_repeated_every_interval_fans_the_epoch_out_once()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var (published, _, lease) = await RunningAsync(mesh);
        var signer = GovernanceSigner.FromDirectory(mesh.Keys.DirectoryPath, mesh.Clock);
        const string D = SkeletonHarness.Domain;

        // Sync re-sends the acknowledgement every interval (a new message, a new consumer instance each time).
        for (var i = 0; i < 3; i++)
        {
            var at = mesh.Clock.GetUtcNow().AddMilliseconds(i);
            await mesh.Bus.Publish(signer.Sign(new PolicySynced(D, D, PolicyScope.Domain, 2, "sha256:02", at)));
            await mesh.EndpointConsumedAsync<PolicySynced>("enforce-reevaluation", m => m.Epoch == 2 && m.SyncedAt == at);
        }

        await SkeletonHarness.EventuallyAsync(
            () => Task.FromResult(published.OfType<ExecutionReevaluationRequested>().Count(r => r.IntentId == lease.IntentId)), n => n > 0, "the fan-out");
        await Task.Delay(300);
        Assert.Single(published.OfType<ExecutionReevaluationRequested>(), r => r.IntentId == lease.IntentId);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_acknowledgement_not_signed_by_the_domain_re_evaluates_nothing()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var (published, _, lease) = await RunningAsync(mesh);
        const string D = SkeletonHarness.Domain;
        var forged = new GovernanceSigner(() => Ed25519Signer.Generate(KeyUsage.Envelope)).Sign(
            new PolicySynced(D, D, PolicyScope.Domain, 2, "sha256:02", mesh.Clock.GetUtcNow()));

        await mesh.Bus.Publish(forged);

        // The positive signal: the re-evaluation endpoint took the forgery (and refused it) …
        await mesh.EndpointConsumedAsync<PolicySynced>("enforce-reevaluation", m => m.Epoch == 2);
        await mesh.SagaInStateAsync(lease.IntentId, "Executing");
        // … and the execution was not asked to re-evaluate.
        Assert.DoesNotContain(published.OfType<EvaluateIntent>(), e => e.IntentId == lease.IntentId);
        Assert.Equal(0, (await mesh.SagaAsync(lease.IntentId))!.RenewalRequested);
    }
}
