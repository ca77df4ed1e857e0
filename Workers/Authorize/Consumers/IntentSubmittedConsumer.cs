using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Paths;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>
/// The critical path: an intent from the agent ingress in, one grant or denial (signed) sent to the verified agent's queue
/// alone; the recorded decision and its verified intent are also published, for the saga and lineage.
/// </summary>
public sealed class IntentSubmittedConsumer(LocalIntentPath path, AgentAnswerSigner signer) : IConsumer<IntentSubmitted>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<IntentSubmitted> context)
    {
        var decision = await path.AuthorizeAsync(context.Message, context.GetRedeliveryCount(), context.CancellationToken);
        await SendAsync(context, decision, signer);
    }

    internal static async Task SendAsync(ConsumeContext context, Decision decision, AgentAnswerSigner signer)
    {
        var message = signer.Sign(decision.Message);
        // An endorsement is not an answer: it is for the bridge (published below), and the target's answer comes back.
        if (decision is not EndorsementDecision)
        {
            var endpoint = await context.GetSendEndpoint(AgentQueue.Address(decision.Agent));
            await endpoint.Send(message, message.GetType(), context.CancellationToken);
        }

        if (!decision.Recorded)
        {
            // Answered to the sender only: an intent id is not a capability, so an answer that is not this intent's
            // recorded decision (e.g. ReplayDetected for an id another agent holds) never reaches the saga of that id.
            return;
        }

        // Published, beside the critical path, for the lifecycle saga (Enforce) and lineage: the verified intent first
        // (the saga takes its agent from it, once), then the decision. Agent queues are never bound to published
        // types, and agent users may not read these exchanges, so no agent receives another's grant this way.
        if (decision.Intent is { } intent)
        {
            await context.Publish(intent, context.CancellationToken);
        }

        await context.Publish(message, message.GetType(), context.CancellationToken);
    }
}

/// <summary>Signs denials for agents with the domain's grant key (<see cref="AgentNotices.DenialType"/>); other answers pass unchanged.</summary>
public sealed class AgentAnswerSigner(AuthorizeKeys keys, TimeProvider time)
{
    /// <summary>The message to send: a <see cref="GrantDenied"/> with its token, anything else as it is.</summary>
    public object Sign(object message) =>
        message is GrantDenied denied ? AgentNotices.Sign(denied, keys.GrantSigner, time.GetUtcNow()) : message;
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
        _bindIngress = options.Value.QueuePrefix.Length == 0;
        Endpoint(e => e.PrefetchCount = options.Value.PrefetchCount);
    }

    private readonly bool _bindIngress;

    /// <inheritdoc />
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<IntentSubmittedConsumer> consumerConfigurator, IRegistrationContext context) =>
        // The agent ingress of intents: bound to agent-intents alone (not to the IntentSubmitted exchange, where this
        // worker publishes the verified intents), one accepted type, limits before any signature work.
        AgentIngressEndpoint.Configure(endpointConfigurator, context, AgentIngress.IntentsExchange, [.. AgentIngress.IntentTypes], o => o.MaxIntentBytes, _bindIngress);
}
