using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Trust;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>
/// What an agent acts on must carry its domain's signature: a denial or halt put in its queue by anyone else (here sent
/// straight to it, as on a broker where agents share a user) is logged and ignored, and nothing of its execution moves.
/// </summary>
public sealed class AgentNoticeTests
{
    private static readonly IntentRequest Deploy = new("deploy", "k8s://cluster-a/ns/web") { MaxDuration = TimeSpan.FromMinutes(5) };

    [Fact(Timeout = 60_000)]
    public async Task A_denial_or_halt_forged_by_another_agent_is_ignored_and_the_execution_goes_on()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var victim = await mesh.AgentAsync("victim");
        var lease = (await victim.SubmitIntentAsync(Deploy)).Lease!;
        await lease.StartAsync();
        await mesh.SagaInStateAsync(lease.IntentId, "Executing");
        // The attacker's own key, of the right usage but not in the domain's key set.
        var foreign = Ed25519Signer.Generate(KeyUsage.Grant);
        var now = mesh.Clock.GetUtcNow();
        var denial = new GrantDenied(lease.IntentId, SkeletonHarness.Domain, victim.Subject, GovernanceReason.PolicyRevoked, "renewal denied (forged)", 42, []);
        var halt = new HaltExecution(Guid.NewGuid(), SkeletonHarness.Domain, GovernanceScope.Execution, lease.IntentId.ToString(), GovernanceReason.OperatorHalt, "stop (forged)", now)
        {
            IntentId = lease.IntentId,
        };
        object[] forged =
        [
            denial,
            AgentNotices.Sign(denial, foreign, now),
            halt,
            AgentNotices.Sign(halt, foreign, now),
            // A genuine halt token for another halt, pasted onto this one.
            halt with { Token = AgentNotices.Sign(halt with { HaltId = Guid.NewGuid() }, mesh.Keys.Signer(KeyUsage.Grant, now), now).Token },
        ];

        var queue = await mesh.Bus.GetSendEndpoint(AgentQueue.Address(victim.Subject));
        foreach (var message in forged)
        {
            await queue.Send(message, message.GetType());
        }

        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(victim.IgnoredMessages), n => n == forged.Length, "the victim to refuse every forged message");
        Assert.False(lease.Token.IsCancellationRequested);
        Assert.Equal(GovernanceReason.None, lease.StopReason);
        var saga = await mesh.SagaAsync(lease.IntentId);
        Assert.Equal("Executing", saga!.CurrentState);
        Assert.Equal(victim.Subject, saga.Agent);
        Assert.Null(await mesh.Lineage.GetByKeyAsync($"halted:{lease.IntentId:D}"));

        // The same halt signed by the domain is acted on.
        await queue.Send(AgentNotices.Sign(halt, mesh.Keys.Signer(KeyUsage.Grant, now), now));
        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c, "the signed halt to stop the lease");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_signed_but_unrecorded_denial_never_ends_a_running_lease()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var victim = await mesh.AgentAsync("victim");
        var lease = (await victim.SubmitIntentAsync(Deploy)).Lease!;
        var now = mesh.Clock.GetUtcNow();
        var queue = await mesh.Bus.GetSendEndpoint(AgentQueue.Address(victim.Subject));

        // What the mesh answers when someone sends bad input under this intent id: signed, but no lineage index.
        var unrecorded = new GrantDenied(lease.IntentId, SkeletonHarness.Domain, victim.Subject, GovernanceReason.SignatureInvalid, "bad signature", null, []);
        await queue.Send(AgentNotices.Sign(unrecorded, mesh.Keys.Signer(KeyUsage.Grant, now), now));
        // A recorded renewal denial does end it: the positive signal that the first one had its chance.
        var renewalDenied = unrecorded with { Reason = GovernanceReason.PolicyRevoked, LineageIndex = 9 };
        await queue.Send(AgentNotices.Sign(renewalDenied, mesh.Keys.Signer(KeyUsage.Grant, now), now));

        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c, "the renewal denial to end the lease");
        Assert.Equal(GovernanceReason.PolicyRevoked, lease.StopReason);
    }
}
