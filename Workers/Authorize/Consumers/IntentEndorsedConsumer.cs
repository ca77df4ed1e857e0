using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Federation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>
/// The target's side of a cross-domain intent: an endorsement the bridge delivered, decided here. The agent's queue is in
/// its home domain, so the grant or denial is published, for the bridge to carry back (and for this domain's saga).
/// </summary>
public sealed class IntentEndorsedConsumer(EndorsedIntentAuthorizer authorizer, AgentAnswerSigner signer, ILogger<IntentEndorsedConsumer> logger) : IConsumer<IntentEndorsed>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<IntentEndorsed> context)
    {
        var decision = await authorizer.AuthorizeAsync(context.Message, context.GetRedeliveryCount(), context.CancellationToken);
        if (decision is null)
        {
            logger.LogDebug("Endorsement of intent {IntentId} is addressed to {TargetDomain}: outbound, for the bridge", context.Message.IntentId, context.Message.TargetDomain);
            return;
        }

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
        EndpointName = MeshBusEndpointNameFormatter.Name(names, options.Value.QueuePrefix + "authorize-endorsements");
        ConcurrentMessageLimit = options.Value.ConcurrentMessageLimit;
        Endpoint(e =>
        {
            e.PrefetchCount = options.Value.PrefetchCount;
            e.ConfigureConsumeTopology = options.Value.QueuePrefix.Length == 0;
        });
    }
}
