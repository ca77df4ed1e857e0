using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Watchdog;

/// <summary>The peers Sync listens to and how it verifies what they sign (the trust config's pinned roots and accepted key sets).</summary>
/// <param name="Trust">The trust config: pinned roots, accepted peer key sets (updated as newer ones arrive).</param>
/// <param name="Verifier">Verifies heartbeats and acknowledgements by the stating domain's envelope key.</param>
/// <param name="Peers">The pinned peer domains (never this domain).</param>
public sealed record SyncPeers(TrustConfig Trust, GovernanceVerifier Verifier, IReadOnlyCollection<string> Peers)
{
    /// <summary>The peers of the trust config in <paramref name="trust"/> for <paramref name="self"/>.</summary>
    public static SyncPeers From(TrustConfig trust, string self)
    {
        ArgumentNullException.ThrowIfNull(trust);
        return new SyncPeers(trust, new GovernanceVerifier(trust, trust.PinnedRoots), trust.PinnedRoots.Keys.Where(d => d != self).ToList());
    }
}

/// <summary>
/// Layer 2's intake of what peers state over the bridge: each heartbeat and acknowledgement of a pinned peer is verified
/// (its envelope key, through the peer's key set chained to its pinned root), recorded in the per-peer sync state that
/// Authorize reads, and moves the peer's watchdog (<see cref="PeerSyncProgressed"/>). One that does not verify, or is
/// dated in the future, goes to the error queue with the reason and changes nothing: forged input never lapses trust
/// (anyone on the network could send it). A validly signed contradiction does (<see cref="PeerSyncContradicted"/>): a
/// heartbeat that announces an older domain-policy epoch than one the peer acknowledged, signed well after that
/// acknowledgement. In a federation, every recorded heartbeat also tells the federation watchdog whether the peer
/// announces this domain's federation policy. This domain's own statements are Authorize's business and are ignored here.
/// </summary>
public sealed class PeerGovernanceConsumer(IPeerSyncStore store, SyncPeers peers, IOptions<MeshBusOptions> mesh, IOptions<SyncOptions> options, TimeProvider clock,
    IAppliedGovernance governance)
    : IConsumer<DomainHeartbeat>, IConsumer<PolicySynced>
{
    private const string DomainScope = nameof(PolicyScope.Domain);

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<DomainHeartbeat> context)
    {
        var m = context.Message;
        if (m.Domain == mesh.Value.Domain)
        {
            return;
        }

        var now = clock.GetUtcNow();
        Refuse(m.Domain, m.SentAt, now, peers.Verifier.Verify(m, now), $"heartbeat {m.Sequence} of {m.Domain}", typeof(DomainHeartbeat));
        var ct = context.CancellationToken;
        var watchdog = PeerWatchdog.IdOf(m.Domain);
        if (await store.AcknowledgedAsync(m.Domain, m.Domain, DomainScope, ct) is { } ack
            && m.DomainPolicyEpoch < ack.Epoch && m.SentAt > ack.SyncedAt + options.Value.ContradictionGrace)
        {
            await context.Publish(new PeerSyncContradicted(watchdog, m.Domain, GovernanceReason.GovernanceInconsistent,
                $"heartbeat {m.Sequence} signed {m.SentAt:O} announces domain-policy epoch {m.DomainPolicyEpoch}, but {m.Domain} acknowledged epoch {ack.Epoch} at {ack.SyncedAt:O}"), ct);
            return;
        }

        await store.RecordHeartbeatAsync(new PeerHeartbeatRecord(m.Domain, m.SentAt, m.Sequence, m.KeySetSequence, m.DomainPolicyEpoch,
            m.EgressPolicyEpoch, m.FederationPolicyDigest), ct);
        await context.Publish(new PeerSyncProgressed(watchdog, m.Domain, m.SentAt, $"heartbeat {m.Sequence}"), ct);
        if (options.Value.FederationName is { Length: > 0 } federation)
        {
            var mine = governance.Digest(PolicyScope.Federation);
            await context.Publish(new Federation.FederationPeerObserved(Federation.FederationWatchdog.IdOf(federation), federation, m.Domain,
                m.FederationPolicyDigest == mine,
                $"{m.Domain} announces federation policy '{Shown(m.FederationPolicyDigest)}' (heartbeat {m.Sequence}), {mesh.Value.Domain} applied '{Shown(mine)}'"), ct);
        }
    }

    private static string Shown(string digest) => digest.Length == 0 ? "none" : digest;

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<PolicySynced> context)
    {
        var m = context.Message;
        if (m.Domain == mesh.Value.Domain)
        {
            return;
        }

        var now = clock.GetUtcNow();
        Refuse(m.Domain, m.SyncedAt, now, peers.Verifier.Verify(m, now), $"PolicySynced {m.Scope} epoch {m.Epoch} of {m.Domain}", typeof(PolicySynced));
        var ct = context.CancellationToken;
        var watchdog = PeerWatchdog.IdOf(m.Domain);
        var scope = m.Scope.ToString();
        if (m.Publisher == m.Domain && m.Scope == PolicyScope.Domain && await store.GetAsync(m.Domain, ct) is { HeartbeatSequence: > 0 } row
            && row.DomainPolicyEpoch < m.Epoch && row.HeartbeatSentAt > m.SyncedAt + options.Value.ContradictionGrace)
        {
            await context.Publish(new PeerSyncContradicted(watchdog, m.Domain, GovernanceReason.GovernanceInconsistent,
                $"{m.Domain} acknowledged domain-policy epoch {m.Epoch} at {m.SyncedAt:O}, but its heartbeat {row.HeartbeatSequence} signed {row.HeartbeatSentAt:O} announces epoch {row.DomainPolicyEpoch}"), ct);
            return;
        }

        await store.RecordAcknowledgementAsync(m.Domain, m.Publisher, scope, m.Epoch, m.Digest, m.SyncedAt, ct);
        await context.Publish(new PeerSyncProgressed(watchdog, m.Domain, m.SyncedAt, $"PolicySynced {m.Publisher} {scope} epoch {m.Epoch}"), ct);
    }

    private void Refuse(string domain, DateTimeOffset signedAt, DateTimeOffset now, VerificationResult<string> verified, string what, Type type)
    {
        if (!peers.Peers.Contains(domain))
        {
            throw new MalformedMessageException(type, [$"{what} refused: '{domain}' is not a peer pinned in this domain's trust config"]);
        }

        if (!verified.IsValid)
        {
            throw new MalformedMessageException(type, [$"{what} refused ({verified.Reason}): {verified.Detail}"]);
        }

        // Dated in the future beyond the skew: never recorded, so no statement can hold a peer fresh past its real last one.
        if (signedAt - now > options.Value.ClockSkew)
        {
            throw new MalformedMessageException(type, [$"{what} is dated {signedAt:O}, in the future"]);
        }
    }
}

/// <summary>The peers' statements are taken by one replica each (competing consumers); the store keeps the latest.</summary>
public sealed class PeerGovernanceConsumerDefinition : ConsumerDefinition<PeerGovernanceConsumer>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public PeerGovernanceConsumerDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "sync-peer-governance");
        ConcurrentMessageLimit = 8;
    }
}
