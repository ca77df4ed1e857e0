using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Watchdog;

/// <summary>
/// The other side of a lapse: a peer's watchdog lapsed its trust in this domain and told us over the bridge (which
/// verified that the peer sent it). This domain's executions involving that peer can no longer be renewed or relied on
/// there, so Sync orders one <see cref="HaltExecution"/> scoped to the peer here too, which this domain's Enforce fans
/// out to them and signs for its own agents. A lapse can only stop work that involves its sender, so a peer gains no
/// power over anything else by sending one. Lapses about other subjects, and this domain's own, are not for this consumer.
/// </summary>
public sealed class PeerLapseConsumer(IOptions<MeshBusOptions> mesh, TimeProvider clock) : IConsumer<TrustLapsed>
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<TrustLapsed> context)
    {
        var m = context.Message;
        var self = mesh.Value.Domain;
        if (m.Domain == self || m.Scope != GovernanceScope.Peer || m.Subject != self)
        {
            return Task.CompletedTask;
        }

        return context.Publish(new HaltExecution(HaltIdOf(m), self, GovernanceScope.Peer, m.Domain, m.Reason,
            $"{m.Domain} lapsed its trust in {self} at {m.LapsedAt:O}: {m.Detail}", clock.GetUtcNow()), context.CancellationToken);
    }

    /// <summary>The same lapse (redelivered) orders the same halt.</summary>
    public static Guid HaltIdOf(TrustLapsed lapse)
    {
        ArgumentNullException.ThrowIfNull(lapse);
        var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            $"meshbus-peer-lapse-halt/v1\n{lapse.Domain}\n{lapse.Subject}\n{lapse.LapsedAt.ToUnixTimeMilliseconds()}"));
        return new Guid(hash.AsSpan(0, 16));
    }
}

/// <summary>Competing consumers: one replica orders the halt.</summary>
public sealed class PeerLapseConsumerDefinition : ConsumerDefinition<PeerLapseConsumer>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public PeerLapseConsumerDefinition(MeshBusEndpointNameFormatter? names = null) =>
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "sync-peer-lapses");
}
