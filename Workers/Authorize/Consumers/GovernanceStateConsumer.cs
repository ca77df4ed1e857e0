using MassTransit;
using MeshBus.Contracts;
using MeshBus.Workers.Authorize.Checks;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>Feeds this replica's <see cref="ISyncState"/>: every replica must see every heartbeat.</summary>
public sealed class GovernanceStateConsumer(ISyncState sync) : IConsumer<DomainHeartbeat>, IConsumer<PolicySynced>
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<DomainHeartbeat> context)
    {
        sync.Observe(context.Message);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task Consume(ConsumeContext<PolicySynced> context)
    {
        sync.Observe(context.Message);
        return Task.CompletedTask;
    }
}

/// <summary>
/// An instance-specific, temporary endpoint (auto-deleted with the replica), not the shared competing queue: a
/// heartbeat taken by one replica would leave the others stale.
/// </summary>
public sealed class GovernanceStateConsumerDefinition : ConsumerDefinition<GovernanceStateConsumer>
{
    /// <summary>Names the endpoint after this process instance.</summary>
    public GovernanceStateConsumerDefinition()
    {
        var instance = NewId.Next().ToString("N")[..12];
        Endpoint(e =>
        {
            e.Name = "authorize-governance-" + instance;
            e.Temporary = true;
            e.ConcurrentMessageLimit = 1;
        });
    }
}
