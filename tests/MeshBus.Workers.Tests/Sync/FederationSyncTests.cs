using MeshBus.Contracts;
using MeshBus.Persistence;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Workers.Sync;
using MeshBus.Workers.Sync.Federation;
using MeshBus.Workers.Tests.Authorize;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Sync;

/// <summary>
/// The federation policy across members (issue 18): adopted only when every member's root signed it, relayed to the
/// peers, and watched — members that keep announcing another federation policy past the bound lose trust and their work
/// is halted; agreement restores them (controlled time).
/// </summary>
public sealed class FederationSyncTests : IAsyncLifetime
{
    private const string Federation = "acme-globex";
    private static readonly TimeSpan MismatchAfter = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StallAfter = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(1);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-sync-fed-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    private readonly FederatedDomain _peer = FederatedDomain.Create(SyncHarness.Peer);
    private SyncHarness _sync = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        // The domain's keys first (the federation bundle is signed by its root), then Sync with the bundle file.
        var keyDir = Path.Combine(_dir, "keys");
        DomainAdministration.Initialize(keyDir, SyncHarness.Domain, _clock.GetUtcNow());
        await File.WriteAllTextAsync(BundleFile, SignedByEveryMember(epoch: 2));
        _sync = await SyncHarness.StartAsync(_dir, _clock, _peer, StallAfter, new Dictionary<string, string?>
        {
            ["Sync:FederationName"] = Federation,
            ["Sync:FederationPolicyBundleFile"] = BundleFile,
            ["Sync:FederationMismatchAfter"] = MismatchAfter.ToString("c"),
        });
        // Sync reads the file on its first interval, just after start.
        await SkeletonEventually(() => Applied.Epoch(PolicyScope.Federation) == 2, "the federation bundle adopted from the file");
        await _sync.IdleAsync();
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

    private string BundleFile => Path.Combine(_dir, "federation.policy.json");

    private IAppliedGovernance Applied => _sync.Services.GetRequiredService<IAppliedGovernance>();

    private static string Bundle(long epoch) => $$"""
        {
          "format": "meshbus-policy/v1", "scope": "federation", "domain": "{{Federation}}", "epoch": {{epoch}},
          "rules": [
            { "id": "baseline", "effect": "allow", "match": { "actions": ["*"], "resources": ["**"] } },
            { "id": "no-deletes-epoch-{{epoch}}", "effect": "deny", "match": { "actions": ["delete"], "resources": ["**"] } }
          ]
        }
        """;

    private string SignedByEveryMember(long epoch) =>
        PolicyBundleSigning.SignAsRoot(PolicyBundleSigning.SignAsRoot(Bundle(epoch), DomainAdministration.ReadRoot(Path.Combine(_dir, "keys"))), _peer.Root);

    private static string DigestOf(string bundle) =>
        PolicyBundle.TryParse(bundle, out var parsed, out _) && parsed is not null ? parsed.Digest : throw new InvalidOperationException("not a bundle");

    private PolicyPublished FromPeer(string bundle, long epoch) =>
        new(Federation, PolicyScope.Federation, epoch, DigestOf(bundle), bundle, _clock.GetUtcNow()) { Publisher = SyncHarness.Peer };

    [Fact(Timeout = 60_000)]
    public async Task A_federation_bundle_signed_by_every_member_is_adopted_announced_and_published_for_the_peers()
    {
        var digest = DigestOf(await File.ReadAllTextAsync(BundleFile));

        await SkeletonEventually(() => _sync.PublishedOf<PolicyPublished>().Any(p => p.Scope == PolicyScope.Federation), "the federation bundle published");

        Assert.Equal((2L, digest), (Applied.Epoch(PolicyScope.Federation), Applied.Digest(PolicyScope.Federation)));
        var published = _sync.PublishedOf<PolicyPublished>().First(p => p.Scope == PolicyScope.Federation);
        Assert.Equal((Federation, 2L, digest, SyncHarness.Domain), (published.Domain, published.Epoch, published.Digest, published.Publisher));
        // What the heartbeat announces (and so every peer's Authorize compares with its own).
        var heartbeats = _sync.Services.GetServices<IHostedService>().OfType<DomainHeartbeatPublisher>().Single();
        await heartbeats.PublishAsync(default);
        Assert.Contains(_sync.PublishedOf<DomainHeartbeat>(), h => h.Domain == SyncHarness.Domain && h.FederationPolicyDigest == digest);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_adopted_federation_epoch_is_acknowledged_only_once_every_live_Authorize_replica_decides_under_it()
    {
        var digest = Applied.Digest(PolicyScope.Federation);
        var replicas = _sync.Services.GetRequiredService<IReplicaLoadStore>();
        var distributor = _sync.Services.GetRequiredService<FederationPolicyDistributor>();
        var now = _clock.GetUtcNow();
        await replicas.ReportAsync("authorize-1", now, 1, digest, default);
        await replicas.ReportAsync("authorize-2", now, 1, "", default);

        Assert.False(await distributor.AcknowledgeAsync(default));
        // Sync's own loop looks too, every 20 ms just after the adoption: it sends nothing either.
        await Task.Delay(300);
        Assert.DoesNotContain(_sync.PublishedOf<PolicySynced>(), s => s.Scope == PolicyScope.Federation);

        await replicas.ReportAsync("authorize-2", now, 1, digest, default);
        Assert.True(await distributor.AcknowledgeAsync(default));

        // (The loop may have sent one too: acknowledgements are idempotent and re-sent every interval.)
        var ack = _sync.PublishedOf<PolicySynced>().First(s => s.Scope == PolicyScope.Federation);
        Assert.All(_sync.PublishedOf<PolicySynced>().Where(s => s.Scope == PolicyScope.Federation), s => Assert.Equal((2L, digest), (s.Epoch, s.Digest)));
        Assert.Equal((SyncHarness.Domain, Federation, 2L, digest), (ack.Domain, ack.Publisher, ack.Epoch, ack.Digest));
        Assert.True(new GovernanceVerifier(_sync.Peers.Trust, GovernanceVerifier.RootsOf(_sync.Peers.Trust,
            DomainAdministration.ReadRoot(Path.Combine(_dir, "keys")).VerifierKey)).Verify(ack, _clock.GetUtcNow()).IsValid, "signed with the domain's envelope key");
    }

    [Fact(Timeout = 60_000)]
    public async Task A_federation_bundle_relayed_without_every_members_root_signature_is_refused_and_never_adopted()
    {
        var before = Applied.Digest(PolicyScope.Federation);
        var onlyThePeers = PolicyBundleSigning.SignAsRoot(Bundle(3), _peer.Root);

        await _sync.DeliverAsync(FromPeer(onlyThePeers, 3));

        var fault = _sync.SyncConsumed.Single(c => c.Message is PolicyPublished { Epoch: 3 }).Fault;
        Assert.NotNull(fault);
        Assert.Contains("refused", fault.Message, StringComparison.Ordinal);
        Assert.Equal((2L, before), (Applied.Epoch(PolicyScope.Federation), Applied.Digest(PolicyScope.Federation)));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_newer_federation_bundle_relayed_by_a_peer_is_adopted_and_a_late_older_one_changes_nothing()
    {
        var newer = SignedByEveryMember(epoch: 5);

        await _sync.DeliverAsync(FromPeer(newer, 5));
        Assert.Equal((5L, DigestOf(newer)), (Applied.Epoch(PolicyScope.Federation), Applied.Digest(PolicyScope.Federation)));

        var older = SignedByEveryMember(epoch: 4);
        await _sync.DeliverAsync(FromPeer(older, 4));
        Assert.Null(_sync.SyncConsumed.Single(c => c.Message is PolicyPublished { Epoch: 4 }).Fault);
        Assert.Equal((5L, DigestOf(newer)), (Applied.Epoch(PolicyScope.Federation), Applied.Digest(PolicyScope.Federation)));
    }

    [Fact(Timeout = 90_000)]
    public async Task A_peer_announcing_another_federation_policy_past_the_bound_loses_trust_once_and_its_work_is_halted_until_it_agrees_again()
    {
        var mine = Applied.Digest(PolicyScope.Federation);
        Assert.NotEqual("", mine);
        await _sync.DeliverAsync(_sync.PeerHeartbeat(federationDigest: "sha256:" + new string('e', 64)));
        var deadline = _clock.GetUtcNow() + MismatchAfter;

        // Still announcing the other one, heard from all along: no lapse a tick before the deadline.
        await _sync.AdvanceAsync(TimeSpan.FromSeconds(30));
        await _sync.DeliverAsync(_sync.PeerHeartbeat(federationDigest: "sha256:" + new string('e', 64)));
        await _sync.AdvanceAsync(deadline - _clock.GetUtcNow() - Tick);
        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        Assert.Empty(_sync.PublishedOf<HaltExecution>());

        await _sync.AdvanceAsync(Tick);
        await SkeletonEventually(() => _sync.PublishedOf<HaltExecution>().Count > 0, "the peer-scoped halt");
        await _sync.AdvanceAsync(MismatchAfter);
        await _sync.DeliverAsync(_sync.PeerHeartbeat(federationDigest: "sha256:" + new string('e', 64)));

        var lapse = Assert.Single(_sync.PublishedOf<TrustLapsed>());
        Assert.Equal((GovernanceScope.Peer, SyncHarness.Peer, GovernanceReason.FederationMismatch), (lapse.Scope, lapse.Subject, lapse.Reason));
        Assert.Contains(mine, lapse.Detail, StringComparison.Ordinal);
        var halt = Assert.Single(_sync.PublishedOf<HaltExecution>());
        Assert.Equal((GovernanceScope.Peer, SyncHarness.Peer, GovernanceReason.FederationMismatch), (halt.Scope, halt.Subject, halt.Reason));
        Assert.Equal(nameof(GovernanceReason.FederationMismatch), (await _sync.Store.GetAsync(SyncHarness.Peer, default))!.Lapse);

        // It adopts this domain's federation policy: restored, nothing else halted.
        await _sync.DeliverAsync(_sync.PeerHeartbeat(federationDigest: mine));
        await SkeletonEventually(() => _sync.PublishedOf<TrustRestored>().Count > 0, "trust restored");
        Assert.Equal(SyncHarness.Peer, Assert.Single(_sync.PublishedOf<TrustRestored>()).Subject);
        Assert.Null((await _sync.Store.GetAsync(SyncHarness.Peer, default))!.Lapse);
        Assert.Single(_sync.PublishedOf<HaltExecution>());
    }

    [Fact(Timeout = 90_000)]
    public async Task A_peer_that_adopts_the_federation_policy_before_the_deadline_never_loses_trust()
    {
        var mine = Applied.Digest(PolicyScope.Federation);
        await _sync.DeliverAsync(_sync.PeerHeartbeat(federationDigest: ""));
        await _sync.AdvanceAsync(MismatchAfter - TimeSpan.FromSeconds(5));
        await _sync.DeliverAsync(_sync.PeerHeartbeat(federationDigest: mine));

        await _sync.AdvanceAsync(MismatchAfter * 2);

        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        Assert.Empty(_sync.PublishedOf<HaltExecution>());
        Assert.Null((await _sync.Store.GetAsync(SyncHarness.Peer, default))!.Lapse);
    }

    private static Task SkeletonEventually(Func<bool> condition, string what) =>
        Skeleton.SkeletonHarness.EventuallyAsync(() => Task.FromResult(condition()), ok => ok, what);
}
