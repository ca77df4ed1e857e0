using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>
/// Feeds this replica's <see cref="ISyncState"/>: every replica must see every heartbeat. Heartbeats and
/// acknowledgements count only when signed by their domain's envelope key; a published policy only when its bundle
/// verifies with the domain's grant key (<see cref="IPolicyBundles.Load"/>). Anything else goes to the error queue at once
/// (<see cref="MalformedMessageException"/>, never retried) with the reason, never reaching the sync view.
/// </summary>
public sealed class GovernanceStateConsumer(ISyncState sync, IPolicyBundles bundles, GovernanceVerifier verifier, TimeProvider time, IOptions<MeshBusOptions> mesh,
    ReplicaLoadReporter reporter)
    : IConsumer<DomainHeartbeat>, IConsumer<PolicySynced>, IConsumer<PolicyPublished>
{
    /// <summary>
    /// Every replica loads every version of the domain, egress and federation policies (a refused bundle faults to the
    /// error queue), then reports what it loaded (<see cref="ReplicaLoadReporter"/>) so Sync can acknowledge the epoch.
    /// </summary>
    public async Task Consume(ConsumeContext<PolicyPublished> context)
    {
        var m = context.Message;
        var owner = m.Scope switch
        {
            PolicyScope.Domain or PolicyScope.Egress => mesh.Value.Domain,
            PolicyScope.Federation => bundles.FederationName,
            _ => null,
        };
        if (owner is not null && m.Domain == owner)
        {
            bundles.Load(m.Bundle, m.Scope);
            await reporter.ReportAsync(context.CancellationToken);
        }
    }

    /// <inheritdoc />
    public Task Consume(ConsumeContext<DomainHeartbeat> context)
    {
        var m = context.Message;
        var verified = verifier.Verify(m, time.GetUtcNow());
        if (!verified.IsValid)
        {
            throw new MalformedMessageException(typeof(DomainHeartbeat), [$"heartbeat {m.Sequence} of {m.Domain} refused ({verified.Reason}): {verified.Detail}"]);
        }

        if (!sync.Observe(m))
        {
            throw new MalformedMessageException(typeof(DomainHeartbeat), [$"heartbeat {m.Sequence} of {m.Domain} is dated {m.SentAt:O}, in the future"]);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task Consume(ConsumeContext<PolicySynced> context)
    {
        var m = context.Message;
        var verified = verifier.Verify(m, time.GetUtcNow());
        if (!verified.IsValid)
        {
            throw new MalformedMessageException(typeof(PolicySynced), [$"PolicySynced {m.Scope} epoch {m.Epoch} of {m.Domain} refused ({verified.Reason}): {verified.Detail}"]);
        }

        sync.Observe(m);
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
    /// <param name="options">The worker's options (queue prefix).</param>
    public GovernanceStateConsumerDefinition(IOptions<AuthorizeOptions> options)
    {
        var prefix = options.Value.QueuePrefix;
        Endpoint(e =>
        {
            e.Name = prefix.Length == 0 ? "authorize-governance-" + Guid.NewGuid().ToString("N")[..12] : prefix + "authorize-governance";
            e.Temporary = prefix.Length == 0;
            e.ConcurrentMessageLimit = 1;
            e.ConfigureConsumeTopology = prefix.Length == 0;
        });
    }
}
