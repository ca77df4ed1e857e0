using MeshBus.Contracts;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Steps;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize.Steps;

public sealed class FreshnessStepTests
{
    private const string Domain = TestDomainKeys.Domain;
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
    private readonly SetSyncState _sync = new();

    private FreshnessStep Step => new(_sync, StepFixtures.Authorize(o =>
    {
        o.SyncWaitSeconds = 20;
        o.SyncMaxRedeliveries = 3;
    }));

    [Fact]
    public async Task A_fresh_domain_lets_the_decision_go_on()
    {
        _sync.Checks[Domain] = SyncCheck.Fresh;

        Assert.Null((await Step.CheckAsync(Domain, Now, 0, Now, default)));
    }

    [Fact]
    public async Task A_stale_domain_is_waited_for_while_the_intent_is_young()
    {
        _sync.Checks[Domain] = SyncCheck.Stale("heartbeat 40 s old");

        await Assert.ThrowsAsync<GovernanceNotFreshException>(async () => await Step.CheckAsync(Domain, Now.AddSeconds(-5), 1, Now, default));
    }

    [Fact]
    public async Task A_stale_domain_past_the_wait_bound_is_denied_sync_stale()
    {
        _sync.Checks[Domain] = SyncCheck.Stale("heartbeat 40 s old");

        Assert.Equal(GovernanceReason.SyncStale, (await Step.CheckAsync(Domain, Now.AddSeconds(-21), 1, Now, default))!.Reason);
        Assert.Equal(GovernanceReason.SyncStale, (await Step.CheckAsync(Domain, Now, 3, Now, default))!.Reason);
    }

    [Fact]
    public async Task An_unknown_domain_is_denied_at_once()
    {
        var denied = (await Step.CheckAsync("nobody.example", Now, 0, Now, default));

        Assert.Equal(GovernanceReason.UnknownDomain, denied!.Reason);
        Assert.False(denied.Allowed);
    }

    [Fact]
    public async Task Both_domains_of_a_cross_domain_decision_must_be_fresh()
    {
        _sync.Checks[Domain] = SyncCheck.Fresh;

        Assert.Equal(GovernanceReason.UnknownDomain, (await Step.CheckAsync(Domain, "globex.example/prod", Now, 0, Now, default))!.Reason);
        _sync.Checks["globex.example/prod"] = SyncCheck.Fresh;
        Assert.Null((await Step.CheckAsync(Domain, "globex.example/prod", Now, 0, Now, default)));
    }
}
