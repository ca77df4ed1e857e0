using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Paths;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>The critical path: an intent in, one grant or denial sent to the verified agent's queue alone (and published for the saga).</summary>
public sealed class IntentSubmittedConsumer(LocalIntentPath path) : IConsumer<IntentSubmitted>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<IntentSubmitted> context)
    {
        var decision = await path.AuthorizeAsync(context.Message, context.GetRedeliveryCount(), context.CancellationToken);
        await SendAsync(context, decision);
    }

    internal static async Task SendAsync(ConsumeContext context, Decision decision)
    {
        // An endorsement is not an answer: it is for the bridge (published below), and the target's answer comes back.
        if (decision is not EndorsementDecision)
        {
            var endpoint = await context.GetSendEndpoint(AgentQueue.Address(decision.Agent));
            await endpoint.Send(decision.Message, decision.Message.GetType(), context.CancellationToken);
        }

        // Also published, beside the critical path, for the lifecycle saga (Enforce) and lineage observers. Agent
        // queues are never bound to published types, so no agent receives another's grant this way.
        await context.Publish(decision.Message, decision.Message.GetType(), context.CancellationToken);
    }
}

/// <summary>Concurrency and prefetch of the intent endpoint (STYLE.md 5); retry, redelivery and outbox come from the hosting defaults.</summary>
public sealed class IntentSubmittedConsumerDefinition : ConsumerDefinition<IntentSubmittedConsumer>
{
    /// <summary>Sizes the endpoint from <see cref="AuthorizeOptions"/>.</summary>
    /// <param name="options">The worker's options.</param>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public IntentSubmittedConsumerDefinition(IOptions<AuthorizeOptions> options, MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, options.Value.QueuePrefix + "authorize-intents");
        ConcurrentMessageLimit = options.Value.ConcurrentMessageLimit;
        Endpoint(e =>
        {
            e.PrefetchCount = options.Value.PrefetchCount;
            e.ConfigureConsumeTopology = options.Value.QueuePrefix.Length == 0;
        });
    }
}
