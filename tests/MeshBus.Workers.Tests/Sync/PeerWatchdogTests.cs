using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Workers.Tests.Authorize;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Sync;

/// <summary>
/// Layer 2 towards a peer (DESIGN.md §5, fail-closed rule 4): verified peer statements are recorded in the per-peer sync
/// state, and the peer's watchdog halts work once synchronization stalls past its deadline — with controlled time.
/// </summary>
public sealed class PeerWatchdogTests : IAsyncLifetime
{
    private static readonly TimeSpan StallAfter = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-sync-wd-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    private readonly FederatedDomain _peer = FederatedDomain.Create(SyncHarness.Peer);
    private SyncHarness _sync = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _sync = await SyncHarness.StartAsync(_dir, _clock, _peer, StallAfter);
    }

    public async Task DisposeAsync()
    {
        await _sync.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_verified_peer_heartbeat_is_recorded_in_the_shared_sync_state()
    {
        var heartbeat = _sync.PeerHeartbeat(domainEpoch: 4);

        await _sync.DeliverAsync(heartbeat);

        var row = await _sync.Store.GetAsync(SyncHarness.Peer, default);
        Assert.NotNull(row);
        Assert.Equal(heartbeat.SentAt, row.HeartbeatSentAt);
        Assert.Equal(4, row.DomainPolicyEpoch);
        Assert.Null(row.Lapse);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_peer_heartbeat_that_does_not_verify_is_refused_and_never_recorded()
    {
        var forged = _sync.PeerHeartbeat(key: Ed25519Signer.Generate(KeyUsage.Envelope));

        await _sync.DeliverAsync(forged);

        var (_, _, fault) = Assert.Single(_sync.SyncConsumed, c => c.Message is DomainHeartbeat { Domain: SyncHarness.Peer });
        Assert.NotNull(fault);
        Assert.Contains("refused", fault.Message, StringComparison.Ordinal);
        Assert.Null(await _sync.Store.GetAsync(SyncHarness.Peer, default));
        Assert.Null(await _sync.WatchdogAsync());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_peer_heartbeat_dated_in_the_future_beyond_the_skew_is_refused()
    {
        await _sync.DeliverAsync(_sync.PeerHeartbeat(sentAt: _clock.GetUtcNow().AddMinutes(5)));

        Assert.NotNull(Assert.Single(_sync.SyncConsumed, c => c.Message is DomainHeartbeat { Domain: SyncHarness.Peer }).Fault);
        Assert.Null(await _sync.Store.GetAsync(SyncHarness.Peer, default));
    }

    [Fact(Timeout = 90_000)]
    public async Task Stalled_sync_lapses_trust_and_halts_the_peers_work_once_right_after_the_deadline_and_not_a_tick_before()
    {
        var last = _sync.PeerHeartbeat();
        await _sync.DeliverAsync(last);
        var deadline = last.SentAt + StallAfter;

        // A later heartbeat moves the deadline; then silence.
        await _sync.AdvanceAsync(TimeSpan.FromSeconds(10));
        last = _sync.PeerHeartbeat();
        await _sync.DeliverAsync(last);
        deadline = last.SentAt + StallAfter;

        await _sync.AdvanceAsync(deadline - _clock.GetUtcNow() - Tick);
        Assert.Equal("Watching", (await _sync.WatchdogAsync())!.CurrentState);
        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        Assert.Empty(_sync.PublishedOf<HaltExecution>());

        await _sync.AdvanceAsync(Tick);
        var lapsed = await WaitForAsync<TrustLapsed>(1);
        await _sync.AdvanceAsync(StallAfter);

        var lapse = Assert.Single(_sync.PublishedOf<TrustLapsed>());
        Assert.Equal((SyncHarness.Domain, GovernanceScope.Peer, SyncHarness.Peer, GovernanceReason.SyncStalled), (lapse.Domain, lapse.Scope, lapse.Subject, lapse.Reason));
        Assert.True(lapse.LapsedAt >= deadline, $"lapsed at {lapse.LapsedAt:O}, before the deadline {deadline:O}");
        var halt = Assert.Single(_sync.PublishedOf<HaltExecution>());
        Assert.Equal((GovernanceScope.Peer, SyncHarness.Peer, GovernanceReason.SyncStalled), (halt.Scope, halt.Subject, halt.Reason));
        Assert.Equal("SyncStalled", (await _sync.Store.GetAsync(SyncHarness.Peer, default))!.Lapse);
        Assert.NotNull(lapsed);
        // Both in the domain's lineage log.
        await LineageAsync(MeshBus.Workers.Lineage.LineageKeys.Of(lapse));
        await LineageAsync(MeshBus.Workers.Lineage.LineageKeys.Of(halt));
    }

    [Fact(Timeout = 90_000)]
    public async Task A_deadline_pending_at_a_sync_restart_still_fires_when_the_peer_stays_silent()
    {
        var last = _sync.PeerHeartbeat();
        await _sync.DeliverAsync(last);
        var deadline = last.SentAt + StallAfter;
        await _sync.AdvanceAsync(TimeSpan.FromSeconds(20));
        var scheduled = (await _sync.WatchdogAsync())!.DeadlineToken;

        // Restart: the in-memory scheduler's pending deadline died with the old process; the watchdog's state did not.
        await _sync.DisposeAsync();
        _sync = await SyncHarness.StartAsync(_dir, _clock, _peer, StallAfter);
        await Skeleton.SkeletonHarness.EventuallyAsync(async () => (await _sync.WatchdogAsync())!.DeadlineToken, token => token != scheduled,
            "the deadline scheduled again at start");
        await _sync.IdleAsync();

        await _sync.AdvanceAsync(deadline - _clock.GetUtcNow() - Tick);
        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        await _sync.AdvanceAsync(Tick);
        await WaitForAsync<TrustLapsed>(1);
        await _sync.AdvanceAsync(StallAfter);
        Assert.Equal(GovernanceReason.SyncStalled, Assert.Single(_sync.PublishedOf<TrustLapsed>()).Reason);
        Assert.Single(_sync.PublishedOf<HaltExecution>());
    }

    [Fact(Timeout = 90_000)]
    public async Task The_watchdog_state_survives_a_sync_restart_and_its_next_deadline_fires_once()
    {
        var last = _sync.PeerHeartbeat();
        await _sync.DeliverAsync(last);
        var deadline = last.SentAt + StallAfter;
        await _sync.AdvanceAsync(TimeSpan.FromSeconds(20));

        // Restart on the same database: the watchdog (and its deadline) is the stored one.
        await _sync.DisposeAsync();
        _sync = await SyncHarness.StartAsync(_dir, _clock, _peer, StallAfter);
        var stored = await _sync.WatchdogAsync();
        Assert.Equal(deadline, stored!.Deadline);

        // The restarted replica hears the peer again before the deadline (competing consumers: any replica may).
        await _sync.AdvanceAsync(deadline - _clock.GetUtcNow() - Tick);
        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        await _sync.DeliverAsync(last with { }); // a redelivered copy: changes nothing
        Assert.Equal(deadline, (await _sync.WatchdogAsync())!.Deadline);
        var fresh = _sync.PeerHeartbeat();
        await _sync.DeliverAsync(fresh);
        Assert.Equal(fresh.SentAt + StallAfter, (await _sync.WatchdogAsync())!.Deadline);

        await _sync.AdvanceAsync(StallAfter - Tick);
        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        await _sync.AdvanceAsync(Tick);
        await WaitForAsync<TrustLapsed>(1);
        await _sync.AdvanceAsync(StallAfter);
        Assert.Single(_sync.PublishedOf<TrustLapsed>());
        Assert.Single(_sync.PublishedOf<HaltExecution>());
    }

    [Fact(Timeout = 90_000)]
    public async Task The_next_good_heartbeat_restores_trust_and_resumes_nothing()
    {
        await _sync.DeliverAsync(_sync.PeerHeartbeat());
        await _sync.AdvanceAsync(StallAfter);
        await WaitForAsync<TrustLapsed>(1);
        var publishedAtLapse = _sync.Published.Count;

        var next = _sync.PeerHeartbeat();
        await _sync.DeliverAsync(next);

        var restored = await WaitForAsync<TrustRestored>(1);
        await LineageAsync(MeshBus.Workers.Lineage.LineageKeys.Of(restored));
        Assert.Equal((GovernanceScope.Peer, SyncHarness.Peer), (restored.Scope, restored.Subject));
        Assert.Null((await _sync.Store.GetAsync(SyncHarness.Peer, default))!.Lapse);
        Assert.Equal("Watching", (await _sync.WatchdogAsync())!.CurrentState);
        // Nothing but the delivered heartbeat, the watchdog's own bookkeeping and the restoration: no grant, no renewal,
        // no second halt.
        var after = _sync.Published.Skip(publishedAtLapse).Select(m => m.GetType().Name).Distinct().Order().ToList();
        Assert.Equal(["DomainHeartbeat", "PeerSyncProgressed", "TrustRestored"], after);
        Assert.Single(_sync.PublishedOf<HaltExecution>());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_signed_heartbeat_announcing_an_older_epoch_than_the_peer_acknowledged_lapses_trust_as_inconsistent()
    {
        var acked = new GovernanceSigner(() => _peer.Signers[KeyUsage.Envelope]).Sign(
            new PolicySynced(SyncHarness.Peer, SyncHarness.Peer, PolicyScope.Domain, 5, "sha256:05", _clock.GetUtcNow()));
        await _sync.DeliverAsync(acked);
        await _sync.AdvanceAsync(TimeSpan.FromSeconds(20));

        await _sync.DeliverAsync(_sync.PeerHeartbeat(domainEpoch: 4));

        var lapse = await WaitForAsync<TrustLapsed>(1);
        Assert.Equal(GovernanceReason.GovernanceInconsistent, lapse.Reason);
        Assert.Equal(GovernanceReason.GovernanceInconsistent, Assert.Single(_sync.PublishedOf<HaltExecution>()).Reason);
        Assert.Equal("GovernanceInconsistent", (await _sync.Store.GetAsync(SyncHarness.Peer, default))!.Lapse);

        // A contradiction is evidence, not a stall: a later heartbeat that agrees again does not restore trust by itself.
        await _sync.AdvanceAsync(TimeSpan.FromSeconds(5));
        await _sync.DeliverAsync(_sync.PeerHeartbeat(domainEpoch: 5));
        Assert.Empty(_sync.PublishedOf<TrustRestored>());
        Assert.Equal("GovernanceInconsistent", (await _sync.Store.GetAsync(SyncHarness.Peer, default))!.Lapse);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_heartbeat_of_an_older_epoch_within_the_rollout_grace_is_not_a_contradiction()
    {
        var acked = new GovernanceSigner(() => _peer.Signers[KeyUsage.Envelope]).Sign(
            new PolicySynced(SyncHarness.Peer, SyncHarness.Peer, PolicyScope.Domain, 5, "sha256:05", _clock.GetUtcNow()));
        await _sync.DeliverAsync(acked);
        await _sync.AdvanceAsync(TimeSpan.FromSeconds(2));

        await _sync.DeliverAsync(_sync.PeerHeartbeat(domainEpoch: 4));

        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        Assert.Equal(4, (await _sync.Store.GetAsync(SyncHarness.Peer, default))!.DomainPolicyEpoch);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_peer_that_lapsed_its_trust_in_this_domain_gets_one_halt_of_this_domains_work_involving_it()
    {
        var lapse = new TrustLapsed(SyncHarness.Peer, GovernanceScope.Peer, SyncHarness.Domain, GovernanceReason.SyncStalled, "no heartbeat", _clock.GetUtcNow());

        await _sync.DeliverAsync(lapse);
        await _sync.DeliverAsync(lapse with { }); // redelivered: the same halt id

        var halts = _sync.PublishedOf<HaltExecution>();
        Assert.Equal(2, halts.Count);
        Assert.All(halts, h => Assert.Equal((SyncHarness.Domain, GovernanceScope.Peer, SyncHarness.Peer, GovernanceReason.SyncStalled), (h.Domain, h.Scope, h.Subject, h.Reason)));
        Assert.Single(halts.Select(h => h.HaltId).Distinct());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_peers_lapse_about_another_subject_halts_nothing_here()
    {
        await _sync.DeliverAsync(new TrustLapsed(SyncHarness.Peer, GovernanceScope.Peer, CrossDomainHarness.ThirdDomain, GovernanceReason.SyncStalled, "", _clock.GetUtcNow()));
        await _sync.DeliverAsync(new TrustLapsed(SyncHarness.Peer, GovernanceScope.Agent, SyncHarness.Domain, GovernanceReason.SyncStalled, "", _clock.GetUtcNow()));

        Assert.Empty(_sync.PublishedOf<HaltExecution>());
    }

    private Task LineageAsync(string key) =>
        Skeleton.SkeletonHarness.EventuallyAsync(() => _sync.Lineage.GetByKeyAsync(key), r => r is not null, "lineage key " + key);

    private async Task<T> WaitForAsync<T>(int count)
    {
        await Skeleton.SkeletonHarness.EventuallyAsync(() => Task.FromResult(_sync.PublishedOf<T>().Count), n => n >= count, $"{count} {typeof(T).Name}");
        return _sync.PublishedOf<T>()[count - 1];
    }
}
