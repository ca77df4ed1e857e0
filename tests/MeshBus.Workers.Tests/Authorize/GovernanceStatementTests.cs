using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>
/// Issue 15 item 1: heartbeats, acknowledgements, quarantines and releases carry authority only when signed by the
/// key whose usage allows it, and their sequences and times come from the signed content.
/// </summary>
public sealed class GovernanceStatementTests
{
    private static DateTimeOffset Now(AuthorizeHarness h) => h.Time.GetUtcNow();

    private static Task<AuthorizeHarness> StartAsync() => AuthorizeHarness.StartAsync();

    private static async Task<Exception> RefusedAsync<T>(AuthorizeHarness h, Func<T, bool> which)
        where T : class
    {
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<T>().Any(c => which(c.Message) && c.Fault is not null), typeof(T).Name + " refused");
        return h.Recorder.ConsumedOf<T>().First(c => which(c.Message) && c.Fault is not null).Fault!;
    }

    /// <summary>Publishes a quarantine signed by the domain's envelope key and waits until Authorize applied it.</summary>
    private static async Task QuarantineAsync(AuthorizeHarness h, string agent, string detail, DateTimeOffset at)
    {
        var applied = h.Recorder.ConsumedOf<AgentQuarantined>().Count(c => c.Fault is null);
        await h.Bus.Publish(h.Keys.Governance.Sign(new AgentQuarantined(TestDomainKeys.Domain, agent, GovernanceReason.HaltNotAcknowledged, detail, null, at)));
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<AgentQuarantined>().Count(c => c.Fault is null) > applied, "quarantine (" + detail + ") applied");
    }

    [Fact(Timeout = 60_000)]
    public async Task An_unsigned_heartbeat_does_not_make_a_stale_domain_fresh()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.Bus.Publish(new DomainHeartbeat(TestDomainKeys.Domain, 1, Now(h), h.Keys.KeySet.Sequence, h.Policy.LoadedEpoch, 0, ""));

        var fault = await RefusedAsync<DomainHeartbeat>(h, _ => true);
        var intent = agent.Intent(Now(h).AddSeconds(-25));
        await h.SubmitAsync(intent);

        Assert.IsType<MalformedMessageException>(fault);
        Assert.Contains("not signed", fault.Message, StringComparison.Ordinal);
        await h.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_heartbeat_signed_with_a_key_of_another_usage_is_refused()
    {
        await using var h = await StartAsync();
        var heartbeat = new DomainHeartbeat(TestDomainKeys.Domain, 1, Now(h), h.Keys.KeySet.Sequence, h.Policy.LoadedEpoch, 0, "");
        await h.Bus.Publish(heartbeat with { Signature = GovernanceSignatures.Sign(heartbeat, h.Keys.Signers[KeyUsage.Grant]) });

        var fault = await RefusedAsync<DomainHeartbeat>(h, _ => true);

        Assert.Contains("not a envelope key", fault.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_forged_heartbeat_with_the_largest_sequence_does_not_pin_the_sync_view()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        var genuine = h.Keys.Governance.Sign(new DomainHeartbeat(TestDomainKeys.Domain, 5, Now(h), h.Keys.KeySet.Sequence, h.Policy.LoadedEpoch, 0, ""));
        // The forger copies a genuine signature and raises the sequence: the signature covers the sequence.
        await h.Bus.Publish(genuine with { Sequence = long.MaxValue, SentAt = Now(h).AddSeconds(1) });
        await RefusedAsync<DomainHeartbeat>(h, m => m.Sequence == long.MaxValue);

        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);

        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_heartbeat_dated_in_the_future_is_refused_and_never_keeps_the_domain_fresh()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        var future = Now(h).AddMinutes(10);
        await h.Bus.Publish(h.Keys.Governance.Sign(new DomainHeartbeat(TestDomainKeys.Domain, 1, future, h.Keys.KeySet.Sequence, h.Policy.LoadedEpoch, 0, "")));

        var fault = await RefusedAsync<DomainHeartbeat>(h, _ => true);
        var intent = agent.Intent(Now(h).AddSeconds(-25));
        await h.SubmitAsync(intent);

        Assert.Contains("in the future", fault.Message, StringComparison.Ordinal);
        await h.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
    }

    [Fact(Timeout = 60_000)]
    public async Task Heartbeats_of_any_sync_replica_are_interchangeable_so_stopping_the_newest_keeps_the_domain_fresh()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        // Three replicas started at different times: under per-replica counters the newest numbered far above the others.
        var replicas = new[] { 1_000L, 5_000_000L, 9_000_000_000L };
        foreach (var start in replicas)
        {
            await h.Bus.Publish(h.Keys.Governance.Sign(new DomainHeartbeat(TestDomainKeys.Domain, start, Now(h), h.Keys.KeySet.Sequence, h.Policy.LoadedEpoch, 0, "")));
        }

        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<DomainHeartbeat>().Count() == 3, "three replicas' heartbeats");

        // The newest replica stops; the two older ones keep beating, later than its last heartbeat.
        h.Time.Advance(TimeSpan.FromSeconds(60));
        foreach (var start in replicas[..2])
        {
            await h.Bus.Publish(h.Keys.Governance.Sign(new DomainHeartbeat(TestDomainKeys.Domain, start + 1, Now(h), h.Keys.KeySet.Sequence, h.Policy.LoadedEpoch, 0, "")));
        }

        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<DomainHeartbeat>().Count() == 5, "the older replicas' heartbeats");
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);

        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
    }

    [Fact(Timeout = 120_000)]
    public async Task A_sync_replica_announces_nothing_until_its_configured_domain_policy_is_applied()
    {
        await using var h = await StartAsync();
        var applied = new MeshBus.Workers.Sync.AppliedGovernance(h.Keys.KeySet.Sequence);
        // A restarted replica, its policy file not applied yet: an "epoch 0" heartbeat signed now would contradict the
        // epoch its peers saw the domain acknowledge (they lapse trust, GovernanceInconsistent).
        var replica = new MeshBus.Workers.Sync.DomainHeartbeatPublisher(
            h.Bus, applied, h.Keys.Governance,
            Microsoft.Extensions.Options.Options.Create(new MeshBusOptions { Domain = TestDomainKeys.Domain }),
            Microsoft.Extensions.Options.Options.Create(new MeshBus.Workers.Sync.SyncOptions { PolicyBundleFile = "policy.json" }),
            h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<MeshBus.Workers.Sync.DomainHeartbeatPublisher>.Instance);

        await replica.PublishAsync(CancellationToken.None);
        applied.Apply(PolicyScope.Domain, 3, "sha256:03");
        await replica.PublishAsync(CancellationToken.None);

        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<DomainHeartbeat>().Any(), "the heartbeat after the policy was applied");
        await Task.Delay(200);
        Assert.Equal(3, Assert.Single(h.Recorder.ConsumedOf<DomainHeartbeat>()).Message.DomainPolicyEpoch);
    }

    [Theory(Timeout = 120_000)]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Three_sync_replicas_heartbeat_interchangeably_so_stopping_any_one_keeps_the_domain_fresh(int stopped)
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        var applied = new MeshBus.Workers.Sync.AppliedGovernance(h.Keys.KeySet.Sequence);
        applied.Apply(PolicyScope.Domain, h.Policy.LoadedEpoch, "sha256:00");
        // Three Sync replicas of the domain, as three processes would run them (each with its own sequence state).
        var replicas = Enumerable.Range(0, 3).Select(_ => new MeshBus.Workers.Sync.DomainHeartbeatPublisher(
            h.Bus, applied, h.Keys.Governance,
            Microsoft.Extensions.Options.Options.Create(new MeshBusOptions { Domain = TestDomainKeys.Domain }),
            Microsoft.Extensions.Options.Options.Create(new MeshBus.Workers.Sync.SyncOptions()),
            h.Time, Microsoft.Extensions.Logging.Abstractions.NullLogger<MeshBus.Workers.Sync.DomainHeartbeatPublisher>.Instance)).ToList();
        foreach (var (replica, i) in replicas.Select((r, i) => (r, i)))
        {
            // Started one after the other; the later ones beat more often before the stop.
            for (var beat = 0; beat <= i * 3; beat++)
            {
                await replica.PublishAsync(CancellationToken.None);
            }
        }

        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<DomainHeartbeat>().Count() == 1 + 4 + 7, "the replicas' heartbeats");

        // One replica stops; the bound passes for anything it sent; the other two keep beating.
        h.Time.Advance(TimeSpan.FromSeconds(45));
        foreach (var replica in replicas.Where((_, i) => i != stopped))
        {
            await replica.PublishAsync(CancellationToken.None);
        }

        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<DomainHeartbeat>().Count() == 14, "the remaining replicas' heartbeats");
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);

        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
        Assert.All(h.Recorder.ConsumedOf<DomainHeartbeat>(), c => Assert.Null(c.Fault));
    }

    [Fact(Timeout = 60_000)]
    public async Task An_unsigned_policy_acknowledgement_is_refused()
    {
        await using var h = await StartAsync();
        await h.Bus.Publish(new PolicySynced(TestDomainKeys.Domain, TestDomainKeys.Domain, PolicyScope.Domain, 8, "sha256:bb", Now(h)));

        var fault = await RefusedAsync<PolicySynced>(h, _ => true);

        Assert.IsType<MalformedMessageException>(fault);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_unsigned_quarantine_is_refused_and_the_agent_keeps_being_granted()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        await h.Bus.Publish(new AgentQuarantined(TestDomainKeys.Domain, agent.Subject, GovernanceReason.HaltNotAcknowledged, "forged", null, Now(h)));

        await RefusedAsync<AgentQuarantined>(h, _ => true);
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);

        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_release_not_signed_by_the_domains_root_lifts_nothing()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var quarantinedAt = Now(h);
        await QuarantineAsync(h, agent.Subject, "no ack", quarantinedAt);

        // Signed by a working key of the domain (envelope), not by its root.
        var release = new AgentReleased(TestDomainKeys.Domain, agent.Subject, "mallory", Now(h)) { QuarantinedAt = quarantinedAt };
        await h.Bus.Publish(release with { Signature = GovernanceSignatures.Sign(release, h.Keys.Signers[KeyUsage.Envelope]) });
        await RefusedAsync<AgentReleased>(h, _ => true);
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.Quarantined);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_far_future_release_does_not_make_a_later_quarantine_ineffective()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var first = Now(h);
        await QuarantineAsync(h, agent.Subject, "first", first);
        var release = new AgentReleased(TestDomainKeys.Domain, agent.Subject, "operator", first.AddYears(100)) { QuarantinedAt = first };
        await h.Bus.Publish(release with { Signature = GovernanceSignatures.SignAsRoot(release, h.Keys.Root) });
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<AgentReleased>().Any(c => c.Fault is null), "release applied");

        h.Time.Advance(TimeSpan.FromSeconds(5));
        await QuarantineAsync(h, agent.Subject, "second", Now(h));
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.Quarantined);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_release_lifts_only_the_quarantine_it_names()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var quarantinedAt = Now(h);
        await QuarantineAsync(h, agent.Subject, "no ack", quarantinedAt);

        h.Time.Advance(TimeSpan.FromSeconds(1));
        var stale = new AgentReleased(TestDomainKeys.Domain, agent.Subject, "operator", Now(h)) { QuarantinedAt = quarantinedAt.AddSeconds(-30) };
        await h.Bus.Publish(stale with { Signature = GovernanceSignatures.SignAsRoot(stale, h.Keys.Root) });
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<AgentReleased>().Any(), "release consumed");
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.Quarantined);
    }
}
