using System.Text;
using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>
/// A renewal is as strict as a grant: it re-checks the credential, quarantine and sync freshness now, and it never
/// extends an execution that is over (halted, completed, or past its lease).
/// </summary>
public sealed class RenewalTests
{
    private static DateTimeOffset Now(AuthorizeHarness h) => h.Time.GetUtcNow();

    private static async Task<(AuthorizeHarness H, IntentSubmitted Intent)> GrantedAsync(TimeSpan? credentialLifetime = null)
    {
        var h = await AuthorizeHarness.StartAsync();
        var agent = new TestAgent(h.Keys, credentialLifetime: credentialLifetime);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);
        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
        return (h, intent);
    }

    private static async Task<GrantDenied> RenewalDeniedAsync(AuthorizeHarness h, IntentSubmitted intent, GovernanceReason reason, DateTimeOffset? requestedAt = null)
    {
        await h.Bus.Publish(new EvaluateIntent(intent.IntentId, TestDomainKeys.Domain, EvaluationKind.Renewal, 1, requestedAt ?? Now(h)));
        var answers = await h.AnswersAsync(intent.IntentId, 2);
        Assert.True(answers.Count == 2, "no answer to the renewal");
        var denied = Assert.IsType<GrantDenied>(answers[1]);
        Assert.Equal(reason, denied.Reason);
        return denied;
    }

    private static Task RecordAsync(AuthorizeHarness h, string key, string type) =>
        h.Lineage.AppendAsync(new LineageEntry(key, type, Encoding.UTF8.GetBytes($$"""{"type":"{{type}}"}""")));

    [Fact(Timeout = 60_000)]
    public async Task Renewal_of_a_halted_execution_is_refused()
    {
        var (h, intent) = await GrantedAsync();
        await using var _ = h;
        await RecordAsync(h, DecisionRecord.HaltedKey(intent.IntentId), nameof(ExecutionHalted));

        var denied = await RenewalDeniedAsync(h, intent, GovernanceReason.PolicyRevoked);

        Assert.Contains("halted", denied.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task Renewal_of_a_completed_execution_is_refused()
    {
        var (h, intent) = await GrantedAsync();
        await using var _ = h;
        await RecordAsync(h, DecisionRecord.CompletedKey(intent.IntentId), nameof(ExecutionCompleted));

        var denied = await RenewalDeniedAsync(h, intent, GovernanceReason.PolicyRevoked);

        Assert.Contains("completed", denied.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task Renewal_after_the_lease_expired_is_refused()
    {
        var (h, intent) = await GrantedAsync();
        await using var _ = h;
        var lease = h.Recorder.SentOf<GrantIssued>().Single().ExpiresAt;
        h.Time.Advance(lease - Now(h) + TimeSpan.FromSeconds(31)); // past exp + the 30 s skew
        await h.HeartbeatAsync();

        await RenewalDeniedAsync(h, intent, GovernanceReason.LeaseExpired);
    }

    [Fact(Timeout = 60_000)]
    public async Task Renewal_checks_the_credential_at_renewal_time_not_at_grant_time()
    {
        var (h, intent) = await GrantedAsync(credentialLifetime: TimeSpan.FromSeconds(20));
        await using var _ = h;
        h.Time.Advance(TimeSpan.FromSeconds(55)); // credential gone (20 s + skew 30 s), lease still held (60 s)
        await h.HeartbeatAsync();

        await RenewalDeniedAsync(h, intent, GovernanceReason.CredentialExpired);
    }

    [Fact(Timeout = 60_000)]
    public async Task Renewal_of_a_quarantined_agent_is_refused()
    {
        var (h, intent) = await GrantedAsync();
        await using var _ = h;
        await h.Bus.Publish(h.Keys.Governance.Sign(new AgentQuarantined(TestDomainKeys.Domain, intent.Agent, GovernanceReason.HaltNotAcknowledged, "no ack", null, Now(h))));
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<AgentQuarantined>().Any(c => c.Fault is null), "quarantine applied");

        await RenewalDeniedAsync(h, intent, GovernanceReason.Quarantined);
    }

    [Fact(Timeout = 60_000)]
    public async Task Renewal_while_sync_is_stale_is_refused()
    {
        var (h, intent) = await GrantedAsync();
        await using var _ = h;
        h.Time.Advance(TimeSpan.FromSeconds(40)); // past the 30 s heartbeat bound, no new heartbeat

        await RenewalDeniedAsync(h, intent, GovernanceReason.SyncStale, requestedAt: Now(h).AddMinutes(-1));
    }

    /// <summary>Redeliveries long enough for a test to act between two attempts of one message.</summary>
    private static readonly Dictionary<string, string?> SlowRedeliveries = new()
    {
        ["MeshBus:RedeliverySeconds:0"] = "0.5",
        ["MeshBus:RedeliverySeconds:1"] = "1",
        ["MeshBus:RedeliverySeconds:2"] = "2",
    };

    [Fact(Timeout = 60_000)]
    public async Task A_renewal_that_overtook_the_one_before_it_waits_for_it_and_then_extends_it()
    {
        var h = await AuthorizeHarness.StartAsync(settings: SlowRedeliveries);
        await using var _ = h;
        var intent = new TestAgent(h.Keys).Intent(Now(h));
        await h.HeartbeatAsync();
        await h.SubmitAsync(intent);
        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));

        // A re-evaluation (renewal 2) decided before the heartbeat's renewal 1 it overtook: it must wait, not refuse.
        await h.Bus.Publish(new EvaluateIntent(intent.IntentId, TestDomainKeys.Domain, EvaluationKind.Reevaluation, 2, Now(h)));
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<EvaluateIntent>().Any(c => c.Message.Renewal == 2), "renewal 2 tried once while renewal 1 was undecided");
        await h.Bus.Publish(new EvaluateIntent(intent.IntentId, TestDomainKeys.Domain, EvaluationKind.Renewal, 1, Now(h)));
        var answers = await h.AnswersAsync(intent.IntentId, 3);

        Assert.Equal([1, 2], answers.Skip(1).Select(a => Assert.IsType<GrantRenewed>(a).Renewal).Order());
        Assert.NotNull(await h.Lineage.GetByKeyAsync(DecisionRecord.RenewalKey(intent.IntentId, 2)));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_renewal_whose_previous_renewal_never_comes_is_refused_after_the_redeliveries()
    {
        var (h, intent) = await GrantedAsync();
        await using var _ = h;

        await h.Bus.Publish(new EvaluateIntent(intent.IntentId, TestDomainKeys.Domain, EvaluationKind.Renewal, 2, Now(h)));
        var answers = await h.AnswersAsync(intent.IntentId, 2);

        Assert.True(answers.Count == 2, "no answer to the renewal");
        var denied = Assert.IsType<GrantDenied>(answers[1]);
        Assert.Equal(GovernanceReason.PolicyRevoked, denied.Reason);
        Assert.Contains("renewal 1 was not granted", denied.Detail, StringComparison.Ordinal);
        // Asked once, then redelivered SyncMaxRedeliveries (3) times waiting for renewal 1, then refused.
        Assert.Equal(4, h.Recorder.ConsumedOf<EvaluateIntent>().Count(c => c.Message.Renewal == 2));
    }

    [Fact]
    public void Authorize_looks_for_halts_and_completions_under_the_keys_the_lineage_worker_records_them()
    {
        var id = Guid.NewGuid();
        var at = DateTimeOffset.UnixEpoch;

        Assert.Equal(MeshBus.Workers.Lineage.LineageKeys.Of(new ExecutionHalted(id, "d", "a", GovernanceReason.OperatorHalt, "", at, null)), DecisionRecord.HaltedKey(id));
        Assert.Equal(MeshBus.Workers.Lineage.LineageKeys.Of(new ExecutionCompleted(id, "d", "a", at, null)), DecisionRecord.CompletedKey(id));
    }
}
