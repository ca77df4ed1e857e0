using MassTransit;
using MeshBus.Federation;
using MeshBus.Trust;

namespace MeshBus.Workers.Sync.Bridge;

/// <summary>
/// Hands a verified bridged message to this domain's bus: published (sagas, Authorize, lineage), and for an answer to
/// one of this domain's agents also sent to the agent's own queue, exactly as Authorize sends local answers.
/// </summary>
public sealed class MassTransitLocalBus(IBus bus) : ILocalBus
{
    /// <summary>The header naming the domain a message came from over the bridge.</summary>
    public const string BridgedFromHeader = "MeshBus-Bridged-From";

    /// <inheritdoc />
    public async Task DeliverAsync(BridgedMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Agent is { } agent)
        {
            var endpoint = await bus.GetSendEndpoint(AgentQueue.Address(agent));
            await endpoint.Send(message.Message, message.Route.MessageType, Stamp(message), cancellationToken);
        }

        await bus.Publish(message.Message, message.Route.MessageType, Stamp(message), cancellationToken);
    }

    private static IPipe<SendContext> Stamp(BridgedMessage message) => Pipe.Execute<SendContext>(c =>
    {
        c.MessageId = message.EnvelopeId;
        c.Headers.Set(BridgedFromHeader, message.From);
    });
}
