using MeshBus.Contracts;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>
/// Execution reports and decisions reach the lifecycle saga by different ways (replicas, redeliveries), so any of them
/// can arrive first. Whatever the order, the saga ends in the state that matches what the agent did.
/// </summary>
public sealed class ReportOrderTests
{
    private const string Agent = SkeletonHarness.Domain + "/agents/fast";

    [Fact(Timeout = 60_000)]
    public async Task Completion_reported_before_anything_else_ends_the_saga_completed_and_later_events_do_not_halt_it()
    {
        await using var mesh = await SkeletonHarness.StartAsync(new Dictionary<string, string?> { ["Enforce:HeartbeatTimeout"] = "00:00:30" });
        var intentId = Guid.NewGuid();
        var now = mesh.Clock.GetUtcNow();

        await mesh.Bus.Publish(new ExecutionCompleted(intentId, SkeletonHarness.Domain, Agent, now, "done"));
        var saga = await mesh.SagaInStateAsync(intentId, "Completed");
        Assert.Equal("done", saga!.Detail);
        Assert.Equal(Agent, saga.Agent);

        // The grant and the start arrive afterwards; past the lease and the heartbeat deadline nothing halts the work.
        await mesh.Bus.Publish(new GrantIssued(intentId, SkeletonHarness.Domain, Agent, "x.y.z", 1, now.AddSeconds(60)));
        await mesh.Bus.Publish(new ExecutionStarted(intentId, SkeletonHarness.Domain, Agent, "g-1", now));
        await mesh.LineageKeyAsync($"started:{intentId:D}");
        await mesh.AdvanceAsync(TimeSpan.FromSeconds(120));

        Assert.Equal("Completed", (await mesh.SagaAsync(intentId))!.CurrentState);
        Assert.DoesNotContain(await mesh.Lineage.FindAsync(intentId.ToString("D")), r => r.Type is nameof(HaltExecution) or nameof(AgentQuarantined));
    }

    [Fact(Timeout = 60_000)]
    public async Task Halt_acknowledgement_reported_before_anything_else_ends_the_saga_halted()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var intentId = Guid.NewGuid();
        var haltId = Guid.NewGuid();

        await mesh.Bus.Publish(new ExecutionHalted(intentId, SkeletonHarness.Domain, Agent, GovernanceReason.OperatorHalt, "stopped", mesh.Clock.GetUtcNow(), haltId));

        var saga = await mesh.SagaInStateAsync(intentId, "Halted");
        Assert.Equal(haltId, saga!.HaltId);
        Assert.Equal(GovernanceReason.OperatorHalt, saga.Reason);
    }

    [Fact(Timeout = 60_000)]
    public async Task Grant_seen_after_the_start_gives_the_saga_its_lease_so_it_ends_at_the_lease()
    {
        await using var mesh = await SkeletonHarness.StartAsync(new Dictionary<string, string?> { ["Enforce:HeartbeatTimeout"] = "01:00:00" });
        var intentId = Guid.NewGuid();
        var now = mesh.Clock.GetUtcNow();
        await mesh.Bus.Publish(new ExecutionStarted(intentId, SkeletonHarness.Domain, Agent, "g-1", now));
        await mesh.SagaInStateAsync(intentId, "Executing");

        await mesh.Bus.Publish(new GrantIssued(intentId, SkeletonHarness.Domain, Agent, "x.y.z", 1, now.AddSeconds(60)));
        await SkeletonHarness.EventuallyAsync(() => mesh.SagaAsync(intentId), s => s?.ExpiresAt is not null, "the late grant's lease on the saga");
        await mesh.AdvanceAsync(TimeSpan.FromSeconds(70));

        var saga = await mesh.SagaInStateAsync(intentId, "Expired");
        Assert.Equal(GovernanceReason.LeaseExpired, saga!.Reason);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_peers_halt_of_wider_scope_than_an_execution_is_refused_and_stops_nothing_here()
    {
        await using var mesh = await SkeletonHarness.StartAsync(new Dictionary<string, string?> { ["Enforce:HeartbeatTimeout"] = "01:00:00" });
        var intentId = Guid.NewGuid();
        var now = mesh.Clock.GetUtcNow();
        await mesh.Bus.Publish(new ExecutionStarted(intentId, SkeletonHarness.Domain, Agent, "g-1", now));
        await mesh.SagaInStateAsync(intentId, "Executing");

        // As if it crossed the bridge naming an intent the peer shares: agent scope would stop all of the agent's work.
        var halt = new HaltExecution(Guid.NewGuid(), "globex.example/prod", GovernanceScope.Agent, Agent, GovernanceReason.OperatorHalt, "stop everything", now) { IntentId = intentId };
        await mesh.Bus.Publish(halt);

        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(mesh.Faulted<HaltExecution>(h => h.HaltId == halt.HaltId)), f => f, "the peer's agent-scope halt to be refused");
        Assert.Equal("Executing", (await mesh.SagaAsync(intentId))!.CurrentState);
    }

    [Fact(Timeout = 60_000)]
    public async Task Halt_never_acknowledged_with_no_lease_known_ends_after_the_configured_repeats()
    {
        await using var mesh = await SkeletonHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Enforce:HeartbeatTimeout"] = "01:00:00",
            ["Enforce:MaxHaltRepeats"] = "2",
        });
        var intentId = Guid.NewGuid();
        var now = mesh.Clock.GetUtcNow();
        await mesh.Bus.Publish(new ExecutionStarted(intentId, SkeletonHarness.Domain, Agent, "g-1", now));
        await mesh.SagaInStateAsync(intentId, "Executing");
        await mesh.Bus.Publish(new HaltExecution(Guid.NewGuid(), SkeletonHarness.Domain, GovernanceScope.Execution, intentId.ToString(), GovernanceReason.OperatorHalt, "stop", now) { IntentId = intentId });
        await mesh.SagaInStateAsync(intentId, "Halting");

        await mesh.AdvanceAsync(TimeSpan.FromSeconds(31));
        await SkeletonHarness.EventuallyAsync(() => mesh.SagaAsync(intentId), s => s?.HaltDeadlinesMissed >= 1, "the first missed deadline");
        await mesh.AdvanceAsync(TimeSpan.FromSeconds(31));

        var saga = await mesh.SagaInStateAsync(intentId, "Expired");
        Assert.Equal(GovernanceReason.HaltNotAcknowledged, saga!.Reason);
        Assert.Equal(2, saga.HaltDeadlinesMissed);
        Assert.True(saga.QuarantineRequested);
    }
}
