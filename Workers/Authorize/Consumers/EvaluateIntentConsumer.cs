using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Paths;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>Lease renewals and re-evaluations asked for by the Enforce saga: decided and recorded like a grant.</summary>
public sealed class EvaluateIntentConsumer(RenewalPath path, AgentAnswerSigner signer, ILogger<EvaluateIntentConsumer> logger) : IConsumer<EvaluateIntent>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<EvaluateIntent> context)
    {
        var decision = await path.RenewAsync(context.Message, context.GetRedeliveryCount(), context.CancellationToken);
        if (decision is null)
        {
            // Nothing was granted under this id here: the saga's own timeouts end the lease; say so, do not drop silently.
            logger.LogWarning("EvaluateIntent for unknown intent {IntentId} ignored", context.Message.IntentId);
            return;
        }

        await IntentSubmittedConsumer.SendAsync(context, decision, signer);
    }
}

/// <summary>Concurrency and prefetch of the renewal endpoint.</summary>
public sealed class EvaluateIntentConsumerDefinition : ConsumerDefinition<EvaluateIntentConsumer>
{
    /// <summary>Sizes the endpoint from <see cref="AuthorizeOptions"/>.</summary>
    /// <param name="options">The worker's options.</param>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public EvaluateIntentConsumerDefinition(IOptions<AuthorizeOptions> options, MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, options.Value.QueuePrefix + "authorize-renewals");
        ConcurrentMessageLimit = options.Value.ConcurrentMessageLimit;
        Endpoint(e =>
        {
            e.PrefetchCount = options.Value.PrefetchCount;
            e.ConfigureConsumeTopology = options.Value.QueuePrefix.Length == 0;
        });
    }
}
