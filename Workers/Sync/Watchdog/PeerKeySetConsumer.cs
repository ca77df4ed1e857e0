using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Watchdog;

/// <summary>
/// Key-set distribution, receiving side (DESIGN.md §1, "key set"; trust is never transitive): a peer's
/// <see cref="KeySetPublished"/> is accepted only when signed by the root pinned here for that peer, and a higher
/// sequence replaces the lower one in this Sync's trust config (which the bridge verifies envelopes with). Every key the
/// new set revokes takes effect on receipt: verification through this trust config refuses it at once, and one
/// <see cref="HaltExecution"/> per newly revoked key (scope key) halts the running executions that rely on it. A key
/// set not signed by the pinned root goes to the error queue with the reason and changes nothing. A validly signed key
/// set with a lower sequence but a later issue time than the accepted one contradicts it: trust lapses
/// (<see cref="GovernanceReason.GovernanceInconsistent"/>). An older key set that is merely delivered late is ignored.
/// </summary>
public sealed class PeerKeySetConsumer(SyncPeers peers, IOptions<MeshBusOptions> mesh, TimeProvider clock, ILogger<PeerKeySetConsumer> logger) : IConsumer<KeySetPublished>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<KeySetPublished> context)
    {
        var m = context.Message;
        var self = mesh.Value.Domain;
        if (m.Domain == self)
        {
            return;
        }

        var trust = peers.Trust;
        if (!peers.Peers.Contains(m.Domain) || !trust.PinnedRoots.TryGetValue(m.Domain, out var root))
        {
            throw new MalformedMessageException(typeof(KeySetPublished), [$"key set {m.Sequence} of '{m.Domain}' refused: not a peer pinned in this domain's trust config"]);
        }

        var before = trust.PeerKeySets.GetValueOrDefault(m.Domain);
        var now = clock.GetUtcNow();
        var accepted = trust.AcceptKeySet(m.KeySet, now);
        var ct = context.CancellationToken;
        if (accepted.IsValid)
        {
            var set = accepted.Value!;
            if (set.Domain != m.Domain || set.Sequence != m.Sequence)
            {
                throw new MalformedMessageException(typeof(KeySetPublished), [$"the signed key set is {set.Domain} sequence {set.Sequence}, the message says {m.Domain} sequence {m.Sequence}"]);
            }

            if (before is null || set.Sequence > before.Sequence)
            {
                logger.LogInformation("Accepted key set {Sequence} of {Peer} (was {Before})", set.Sequence, m.Domain, before?.Sequence);
            }

            foreach (var revoked in set.Revoked.Except(before?.Revoked ?? [], StringComparer.Ordinal))
            {
                await context.Publish(new HaltExecution(PeerWatchdog.KeyHaltIdOf(m.Domain, revoked), self, GovernanceScope.Key, revoked, GovernanceReason.KeyRevoked,
                    $"key {revoked} of {m.Domain} is revoked by its key set {set.Sequence}", now), ct);
            }

            return;
        }

        if (accepted.Reason == GovernanceReason.ReplayDetected && before is not null)
        {
            // Signed by the pinned root (the sequence is checked after the signature), but older than the accepted set.
            var lower = KeySet.Verify(m.KeySet, root.PublicKey);
            if (lower.IssuedAt > before.IssuedAt)
            {
                await context.Publish(new PeerSyncContradicted(PeerWatchdog.IdOf(m.Domain), m.Domain, GovernanceReason.GovernanceInconsistent,
                    $"{m.Domain}'s root signed key set {lower.Sequence} at {lower.IssuedAt:O}, after key set {before.Sequence} (signed {before.IssuedAt:O}): sequences must only grow"), ct);
            }

            return;
        }

        throw new MalformedMessageException(typeof(KeySetPublished), [$"key set {m.Sequence} of {m.Domain} refused ({accepted.Reason}): {accepted.Detail}"]);
    }
}

/// <summary>Competing consumers: one replica applies each key set to the domain; Authorize replicas accept it on their own endpoints.</summary>
public sealed class PeerKeySetConsumerDefinition : ConsumerDefinition<PeerKeySetConsumer>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public PeerKeySetConsumerDefinition(MeshBusEndpointNameFormatter? names = null) =>
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "sync-peer-key-sets");
}
