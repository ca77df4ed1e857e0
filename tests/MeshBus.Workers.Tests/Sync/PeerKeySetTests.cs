using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Workers.Tests.Authorize;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Sync;

/// <summary>Key-set distribution at the receiving Sync: pinned root only, higher sequence wins, revocation on receipt, a signed rollback lapses trust.</summary>
public sealed class PeerKeySetTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-sync-ks-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    private readonly FederatedDomain _peer = FederatedDomain.Create(SyncHarness.Peer);
    private SyncHarness _sync = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _sync = await SyncHarness.StartAsync(_dir, _clock, _peer, TimeSpan.FromSeconds(45));
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

    private string CredentialKeyId => _peer.Signers[KeyUsage.Credential].KeyId;

    private KeySetPublished Published(long sequence, DateTimeOffset issuedAt, string[]? revoked = null, RootKey? root = null)
    {
        var set = _peer.KeySet with { Sequence = sequence, IssuedAt = issuedAt, Revoked = revoked ?? [] };
        return new KeySetPublished(SyncHarness.Peer, sequence, set.Sign(root ?? _peer.Root), _clock.GetUtcNow());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_higher_key_set_signed_by_the_pinned_root_replaces_the_lower_and_a_key_it_revokes_is_refused_and_halted_at_once()
    {
        var now = _clock.GetUtcNow();
        Assert.True(_sync.Peers.Trust.Resolve(SyncHarness.Peer, CredentialKeyId, KeyUsage.Credential, now).Found);

        await _sync.DeliverAsync(Published(2, now, [CredentialKeyId]));

        Assert.Equal(2, _sync.Peers.Trust.PeerKeySets[SyncHarness.Peer].Sequence);
        Assert.False(_sync.Peers.Trust.Resolve(SyncHarness.Peer, CredentialKeyId, KeyUsage.Credential, now).Found);
        var halt = Assert.Single(_sync.PublishedOf<HaltExecution>());
        Assert.Equal((GovernanceScope.Key, CredentialKeyId, GovernanceReason.KeyRevoked), (halt.Scope, halt.Subject, halt.Reason));
        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_key_set_not_signed_by_the_pinned_root_is_refused_and_changes_nothing()
    {
        var forged = Published(2, _clock.GetUtcNow(), [CredentialKeyId], RootKey.Generate(SyncHarness.Peer));

        await _sync.DeliverAsync(forged);

        Assert.NotNull(Assert.Single(_sync.SyncConsumed, c => c.Message is KeySetPublished { Domain: SyncHarness.Peer }).Fault);
        Assert.Equal(1, _sync.Peers.Trust.PeerKeySets[SyncHarness.Peer].Sequence);
        Assert.True(_sync.Peers.Trust.Resolve(SyncHarness.Peer, CredentialKeyId, KeyUsage.Credential, _clock.GetUtcNow()).Found);
        Assert.Empty(_sync.PublishedOf<HaltExecution>());
        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
    }

    [Fact(Timeout = 60_000)]
    public async Task A_lower_key_set_signed_after_the_accepted_one_lapses_trust_in_the_peer_as_inconsistent()
    {
        var now = _clock.GetUtcNow();
        await _sync.DeliverAsync(Published(3, now - TimeSpan.FromMinutes(10)));

        await _sync.DeliverAsync(Published(2, now));

        var lapse = Assert.Single(_sync.PublishedOf<TrustLapsed>());
        Assert.Equal((SyncHarness.Peer, GovernanceReason.GovernanceInconsistent), (lapse.Subject, lapse.Reason));
        Assert.Equal(3, _sync.Peers.Trust.PeerKeySets[SyncHarness.Peer].Sequence);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_late_copy_of_an_older_key_set_changes_nothing()
    {
        var now = _clock.GetUtcNow();
        await _sync.DeliverAsync(Published(3, now));

        await _sync.DeliverAsync(new KeySetPublished(SyncHarness.Peer, 1, _peer.SignedKeySet, now));

        Assert.Empty(_sync.PublishedOf<TrustLapsed>());
        Assert.Null(Assert.Single(_sync.SyncConsumed, c => c.Message is KeySetPublished { Domain: SyncHarness.Peer, Sequence: 1 }).Fault);
        Assert.Equal(3, _sync.Peers.Trust.PeerKeySets[SyncHarness.Peer].Sequence);
    }
}
