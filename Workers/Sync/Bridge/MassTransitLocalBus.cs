using MassTransit;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Hosting;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Bridge;

/// <summary>
/// Hands a verified bridged message to this domain's bus: published (sagas, Authorize, lineage), and for an answer to
/// one of this domain's agents also sent to the agent's own queue, exactly as Authorize sends local answers; an inbound
/// endorsement is sent to Authorize's endorsement queue (<c>Federation:EndorsementQueue</c>) only.
/// </summary>
public sealed class MassTransitLocalBus(IBus bus, IOptions<BridgeOptions> options, MeshBusEndpointNameFormatter? names = null) : ILocalBus
{
    /// <summary>The header naming the domain a message came from over the bridge.</summary>
    public const string BridgedFromHeader = "MeshBus-Bridged-From";

    /// <inheritdoc />
    public async Task DeliverAsync(BridgedMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.Route.Delivery == LocalDelivery.SendToEndpoint)
        {
            var endpoint = await bus.GetSendEndpoint(EndpointOf(message.Route.MessageType));
            await endpoint.Send(message.Message, message.Route.MessageType, Stamp(message), cancellationToken);
            return;
        }

        if (message.Agent is { } agent)
        {
            var endpoint = await bus.GetSendEndpoint(AgentQueue.Address(agent));
            await endpoint.Send(message.Message, message.Route.MessageType, Stamp(message), cancellationToken);
        }

        await bus.Publish(message.Message, message.Route.MessageType, Stamp(message), cancellationToken);
    }

    private Uri EndpointOf(Type messageType) => messageType == typeof(IntentEndorsed)
        ? new Uri("queue:" + MeshBusEndpointNameFormatter.Name(names, options.Value.EndorsementQueue))
        : throw new InvalidOperationException($"no endpoint is configured for bridged {messageType.Name}");

    private static IPipe<SendContext> Stamp(BridgedMessage message) => Pipe.Execute<SendContext>(c =>
    {
        c.MessageId = message.EnvelopeId;
        c.Headers.Set(BridgedFromHeader, message.From);
    });
}
