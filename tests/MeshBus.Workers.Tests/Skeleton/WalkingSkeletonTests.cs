using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Ledger.Merkle;
using MeshBus.Workers.Lineage;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

public sealed class WalkingSkeletonTests
{
    private static readonly IntentRequest Deploy = new("deploy", "k8s://cluster-a/ns/web") { MaxDuration = TimeSpan.FromMinutes(5) };

    [Fact]
    public async Task Allowed_intent_gives_a_lease_the_agent_verified()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();

        var outcome = await agent.SubmitIntentAsync(Deploy);

        Assert.True(outcome.IsGranted, outcome.Denial?.Detail);
        var lease = outcome.Lease!;
        Assert.Equal("deploy", lease.Claims.Action);
        Assert.Equal(agent.Subject, lease.Claims.Subject);
        Assert.False(lease.Token.IsCancellationRequested);
        Assert.InRange(lease.Remaining(), TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(58));
    }

    [Fact]
    public async Task Denied_intent_gives_the_reason()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();

        var outcome = await agent.SubmitIntentAsync(new IntentRequest("delete", "k8s://cluster-a/ns/web"));

        Assert.False(outcome.IsGranted);
        Assert.Equal(GovernanceReason.PolicyDenied, outcome.Denial!.Reason);
        Assert.Contains("no-delete", outcome.Denial.Detail, StringComparison.Ordinal);
        Assert.False(outcome.Denial.RejectedByAgent);
    }

    [Fact]
    public async Task Tampered_grant_is_refused_by_the_agent()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        mesh.Authorizer.Mode = StandInMode.TamperSignature;
        var agent = await mesh.AgentAsync();

        var outcome = await agent.SubmitIntentAsync(Deploy);

        Assert.False(outcome.IsGranted);
        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Equal(GovernanceReason.SignatureInvalid, outcome.Denial.Reason);
    }

    [Fact]
    public async Task Grant_bound_to_another_key_is_refused_by_the_agent()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        mesh.Authorizer.Mode = StandInMode.WrongAgentKey;
        var agent = await mesh.AgentAsync();

        var outcome = await agent.SubmitIntentAsync(Deploy);

        Assert.False(outcome.IsGranted);
        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Contains("cnf", outcome.Denial.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Grant_relying_on_an_older_policy_epoch_than_already_seen_is_refused()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        mesh.Authorizer.PolicyEpoch = 5;
        Assert.True((await agent.SubmitIntentAsync(Deploy)).IsGranted);

        mesh.Authorizer.PolicyEpoch = 4;
        var outcome = await agent.SubmitIntentAsync(Deploy);

        Assert.False(outcome.IsGranted);
        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Equal(GovernanceReason.PolicyRevoked, outcome.Denial.Reason);
    }

    [Fact]
    public async Task Resource_accepts_a_grant_only_from_the_holder_of_its_key()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        var lease = (await agent.SubmitIntentAsync(Deploy)).Lease!;
        var resource = new GrantVerifier(SkeletonHarness.Domain, mesh.Keys.LoadTrust(), mesh.Clock);
        var challenge = Guid.NewGuid().ToByteArray();

        Assert.True(resource.Verify(lease.Grant, challenge, lease.Prove(challenge), "deploy", "k8s://cluster-a/ns/web").IsValid);
        var replayed = resource.Verify(lease.Grant, Guid.NewGuid().ToByteArray(), lease.Prove(challenge), "deploy", "k8s://cluster-a/ns/web");
        Assert.Equal(GovernanceReason.SignatureInvalid, replayed.Reason);
        Assert.False(resource.Verify(lease.Grant, challenge, lease.Prove(challenge), "delete", "k8s://cluster-a/ns/web").IsValid);
    }

    [Fact]
    public async Task Halt_cancels_the_token_and_the_saga_ends_halted_with_the_halt_in_lineage()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        var lease = (await agent.SubmitIntentAsync(Deploy)).Lease!;
        await lease.StartAsync();
        await mesh.SagaInStateAsync(lease.IntentId, "Executing");

        var halt = new HaltExecution(Guid.NewGuid(), SkeletonHarness.Domain, GovernanceScope.Execution, lease.IntentId.ToString(), GovernanceReason.OperatorHalt, "operator says stop", mesh.Clock.GetUtcNow())
        {
            IntentId = lease.IntentId,
        };
        await mesh.Bus.Publish(halt);

        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c, "the lease token to be cancelled");
        Assert.Equal(GovernanceReason.OperatorHalt, lease.StopReason);
        var saga = await mesh.SagaInStateAsync(lease.IntentId, "Halted");
        Assert.Equal(halt.HaltId, saga!.HaltId);
        await mesh.LineageKeyAsync($"halt:{lease.IntentId:D}:{halt.HaltId:D}");
        await mesh.LineageKeyAsync($"halted:{lease.IntentId:D}");
    }

    [Fact]
    public async Task Scoped_halt_of_an_agent_reaches_its_execution_through_the_index()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        var lease = (await agent.SubmitIntentAsync(Deploy)).Lease!;
        await lease.StartAsync();
        await mesh.SagaInStateAsync(lease.IntentId, "Executing");

        await mesh.Bus.Publish(new HaltExecution(Guid.NewGuid(), SkeletonHarness.Domain, GovernanceScope.Agent, agent.Subject, GovernanceReason.OperatorHalt, "agent-wide stop", mesh.Clock.GetUtcNow()));

        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c, "the lease token to be cancelled");
        await mesh.SagaInStateAsync(lease.IntentId, "Halted");
    }

    [Fact]
    public async Task Work_stops_at_lease_expiry_on_the_agents_clock_when_every_halt_is_lost()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync(skew: TimeSpan.FromSeconds(2));
        var lease = (await agent.SubmitIntentAsync(Deploy)).Lease!;
        await lease.StartAsync();

        // No halt is ever delivered. Just before receipt + (exp − iat) − skew the work still runs: a probe timer due
        // at that moment has fired (so every timer due by then had its chance), and the lease's has not.
        var probe = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (mesh.Clock.CreateTimer(_ => probe.TrySetResult(), null, TimeSpan.FromSeconds(57), Timeout.InfiniteTimeSpan))
        {
            mesh.Clock.Advance(TimeSpan.FromSeconds(57));
            await probe.Task.WaitAsync(TimeSpan.FromSeconds(5));
        }

        Assert.False(lease.Token.IsCancellationRequested);

        // ...and right after it, the agent's own timer stops it.
        mesh.Clock.Advance(TimeSpan.FromSeconds(1.5));
        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c, "the lease to expire", TimeSpan.FromSeconds(5));
        Assert.Equal(GovernanceReason.LeaseExpired, lease.StopReason);
        await mesh.LineageKeyAsync($"halted:{lease.IntentId:D}");
    }

    [Fact(Timeout = 60_000)]
    public async Task Work_stops_at_the_grants_expiry_on_the_agents_wall_clock_when_the_grant_reached_it_late()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        // The agent's clocks read 1.5 s later than the issuer's (within the 2 s skew): as a grant 1.5 s in transit looks.
        var agentClock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(mesh.Clock.GetUtcNow() + TimeSpan.FromSeconds(1.5));
        var agent = await mesh.AgentAsync(skew: TimeSpan.FromSeconds(2), clock: agentClock);
        var lease = (await agent.SubmitIntentAsync(Deploy)).Lease!;
        await lease.StartAsync();
        var end = lease.Claims.ExpiresAt - TimeSpan.FromSeconds(2);

        // Counted from receipt alone, the lease would run until receipt + (exp − iat) − skew, 1.5 s past exp − skew.
        agentClock.Advance(end - agentClock.GetUtcNow() - TimeSpan.FromMilliseconds(100));
        await Task.Delay(100);
        Assert.False(lease.Token.IsCancellationRequested);
        agentClock.Advance(TimeSpan.FromMilliseconds(200));
        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(lease.Token.IsCancellationRequested), c => c, "the lease to end at exp − skew", TimeSpan.FromSeconds(5));
        Assert.Equal(GovernanceReason.LeaseExpired, lease.StopReason);
    }

    [Fact]
    public async Task Saga_expires_the_lease_and_orders_a_halt_when_no_renewal_comes()
    {
        await using var mesh = await SkeletonHarness.StartAsync(new Dictionary<string, string?> { ["Enforce:HeartbeatTimeout"] = "01:00:00" });
        var intentId = Guid.NewGuid();
        var now = mesh.Clock.GetUtcNow();
        await mesh.Bus.Publish(new GrantIssued(intentId, SkeletonHarness.Domain, SkeletonHarness.Domain + "/agents/a", "x.y.z", 1, now.AddSeconds(60)));
        await mesh.Bus.Publish(new ExecutionStarted(intentId, SkeletonHarness.Domain, SkeletonHarness.Domain + "/agents/a", "g-1", now));
        await mesh.SagaInStateAsync(intentId, "Executing");

        await mesh.AdvanceAsync(TimeSpan.FromSeconds(70));

        var saga = await mesh.SagaInStateAsync(intentId, "Expired");
        Assert.Equal(GovernanceReason.LeaseExpired, saga!.Reason);
        var records = await SkeletonHarness.EventuallyAsync(() => mesh.Lineage.FindAsync(intentId.ToString("D")), r => r.Any(e => e.Key.StartsWith("halt:", StringComparison.Ordinal)), "the expiry halt in lineage");
        Assert.Contains(records, r => r.Type == nameof(HaltExecution));
    }

    [Fact]
    public async Task Agent_that_does_not_acknowledge_a_halt_is_quarantined()
    {
        await using var mesh = await SkeletonHarness.StartAsync(new Dictionary<string, string?> { ["Enforce:HeartbeatTimeout"] = "01:00:00" });
        var intentId = Guid.NewGuid();
        var agent = SkeletonHarness.Domain + "/agents/silent";
        var now = mesh.Clock.GetUtcNow();
        await mesh.Bus.Publish(new GrantIssued(intentId, SkeletonHarness.Domain, agent, "x.y.z", 1, now.AddMinutes(10)));
        await mesh.Bus.Publish(new ExecutionStarted(intentId, SkeletonHarness.Domain, agent, "g-1", now));
        await mesh.SagaInStateAsync(intentId, "Executing");
        await mesh.Bus.Publish(new HaltExecution(Guid.NewGuid(), SkeletonHarness.Domain, GovernanceScope.Execution, intentId.ToString(), GovernanceReason.OperatorHalt, "stop", now) { IntentId = intentId });
        await mesh.SagaInStateAsync(intentId, "Halting");

        await mesh.AdvanceAsync(TimeSpan.FromSeconds(31));

        var quarantine = await mesh.LineageKeyAsync($"quarantined:{intentId:D}");
        Assert.Equal(nameof(AgentQuarantined), quarantine!.Type);
        Assert.True((await mesh.SagaAsync(intentId))!.QuarantineRequested);
    }

    [Fact]
    public async Task Lineage_holds_every_event_in_order_and_its_recomputed_root_matches()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        var lease = (await agent.SubmitIntentAsync(Deploy)).Lease!;
        var id = lease.IntentId.ToString("D");
        await mesh.LineageKeyAsync("intent:" + id);
        await lease.StartAsync();
        await mesh.LineageKeyAsync("started:" + id);
        await lease.HeartbeatAsync();
        await mesh.LineageKeyAsync("heartbeat:" + id + ":1");
        await lease.CompleteAsync("rolled out");
        await mesh.LineageKeyAsync("completed:" + id);
        await mesh.SagaInStateAsync(lease.IntentId, "Completed");

        var records = await mesh.Lineage.FindAsync(id);
        Assert.Equal(["intent:" + id, "started:" + id, "heartbeat:" + id + ":1", "completed:" + id], records.Select(r => r.Key));
        Assert.Equal(records.Select(r => r.Index).Order(), records.Select(r => r.Index));

        var head = await mesh.Lineage.GetTreeHeadAsync();
        var leaves = new List<byte[]>();
        for (var i = 0L; i < head.Size; i++)
        {
            leaves.Add((await mesh.Lineage.GetAsync(i))!.Data);
        }

        Assert.Equal(head.RootHash, MerkleTree.RootOf(leaves));
        // A redelivered event is found by its key, not appended again.
        await mesh.Bus.Publish(new ExecutionCompleted(lease.IntentId, SkeletonHarness.Domain, agent.Subject, mesh.Clock.GetUtcNow(), "again"));
        await mesh.LineageConsumedAsync<ExecutionCompleted>(m => m.Outcome == "again");
        Assert.Equal(head.Size, (await mesh.Lineage.GetTreeHeadAsync()).Size);
        Assert.Equal(LineageKeys.Leaf(new ExecutionHeartbeat(Guid.Empty, "d", "a", 1, DateTimeOffset.UnixEpoch)), LineageKeys.Leaf(new ExecutionHeartbeat(Guid.Empty, "d", "a", 1, DateTimeOffset.UnixEpoch)));
    }
}
