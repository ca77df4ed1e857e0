using MassTransit;
using MeshBus.Federation;
using MeshBus.Hosting;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Bridge;

/// <summary>
/// The outbound side of the bridge for one relay-table type: a local message, published only after the consumer that
/// produced it succeeded (the bus's outbox), is sealed and logged for the peers the table names. Idempotent by the bus
/// message id: a redelivery keeps the logged envelope, its linkSeq and its id.
/// </summary>
/// <typeparam name="T">The contract.</typeparam>
public sealed class RelayConsumer<T>(FederationBridge bridge) : IConsumer<T>
    where T : class
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<T> context)
    {
        var sourceId = context.MessageId?.ToString("D") ?? throw new InvalidOperationException($"a {typeof(T).Name} without a message id cannot be relayed idempotently");
        return bridge.RelayAsync(context.Message, sourceId, context.CancellationToken);
    }
}

/// <summary>All relay consumers share one endpoint, <c>sync-bridge-out</c>; retry and redelivery come from the hosting defaults.</summary>
/// <typeparam name="T">The contract.</typeparam>
public sealed class RelayConsumerDefinition<T> : ConsumerDefinition<RelayConsumer<T>>
    where T : class
{
    /// <summary>Names and sizes the endpoint.</summary>
    public RelayConsumerDefinition(IOptions<BridgeOptions> options, MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "sync-bridge-out");
        ConcurrentMessageLimit = options.Value.ConcurrentMessageLimit;
    }
}
