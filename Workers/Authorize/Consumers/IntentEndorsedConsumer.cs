using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Paths;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>
/// The target's side of a cross-domain intent: an endorsement the bridge delivered (sent to this endpoint, see
/// <see cref="IntentEndorsedConsumerDefinition.Address"/>), decided here. The agent's queue is in its home domain, so the
/// grant or denial is published, for the bridge to carry back (and for this domain's saga). The endpoint does not
/// subscribe to published <see cref="IntentEndorsed"/>: those are this domain's own outbound endorsements.
/// </summary>
public sealed class IntentEndorsedConsumer(EndorsedIntentPath path, AgentAnswerSigner signer, IOptions<MeshBusOptions> mesh) : IConsumer<IntentEndorsed>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<IntentEndorsed> context)
    {
        var m = context.Message;
        if (m.TargetDomain != mesh.Value.Domain)
        {
            // Misrouted (only the bridge sends here, and only what is addressed to this domain): nobody to answer.
            throw new UnverifiableEndorsementException(m.IntentId, GovernanceReason.MalformedInput,
                $"the endorsement is addressed to {m.TargetDomain}, not {mesh.Value.Domain}");
        }

        var decision = await path.AuthorizeAsync(m, context.GetRedeliveryCount(), context.CancellationToken);
        var message = signer.Sign(decision.Message);
        await context.Publish(message, message.GetType(), context.CancellationToken);
    }
}

/// <summary>Concurrency and prefetch of the endorsement endpoint; retry, redelivery and outbox come from the hosting defaults.</summary>
public sealed class IntentEndorsedConsumerDefinition : ConsumerDefinition<IntentEndorsedConsumer>
{
    /// <summary>Sizes the endpoint from <see cref="AuthorizeOptions"/>.</summary>
    /// <param name="options">The worker's options.</param>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public IntentEndorsedConsumerDefinition(IOptions<AuthorizeOptions> options, MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = Name(options.Value, names);
        ConcurrentMessageLimit = options.Value.ConcurrentMessageLimit;
        Endpoint(e =>
        {
            e.PrefetchCount = options.Value.PrefetchCount;
            // Not bound to published IntentEndorsed: what this domain publishes is its own outbound endorsement.
            e.ConfigureConsumeTopology = false;
        });
    }

    /// <summary>The queue inbound endorsements are sent to (by the bridge), e.g. <c>queue:authorize-endorsements</c>.</summary>
    /// <param name="options">The worker's options (queue prefix).</param>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public static Uri Address(AuthorizeOptions options, MeshBusEndpointNameFormatter? names = null) => new("queue:" + Name(options, names));

    private static string Name(AuthorizeOptions options, MeshBusEndpointNameFormatter? names) =>
        MeshBusEndpointNameFormatter.Name(names, options.QueuePrefix + "authorize-endorsements");
}
