using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Checks;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>Applies quarantines and releases to the shared quarantine table (one replica per event; all read it).</summary>
public sealed class QuarantineConsumer(IQuarantineState quarantine) : IConsumer<AgentQuarantined>, IConsumer<AgentReleased>
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<AgentQuarantined> context) =>
        quarantine.ApplyAsync(context.Message.Agent, true, context.Message.QuarantinedAt, context.CancellationToken);

    /// <inheritdoc />
    public Task Consume(ConsumeContext<AgentReleased> context) =>
        quarantine.ApplyAsync(context.Message.Agent, false, context.Message.ReleasedAt, context.CancellationToken);
}

/// <summary>The shared (competing) quarantine endpoint.</summary>
public sealed class QuarantineConsumerDefinition : ConsumerDefinition<QuarantineConsumer>
{
    /// <summary>Names the endpoint.</summary>
    /// <param name="options">The worker's options (queue prefix).</param>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public QuarantineConsumerDefinition(IOptions<AuthorizeOptions> options, MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, options.Value.QueuePrefix + "authorize-quarantine");
        Endpoint(e => e.ConfigureConsumeTopology = options.Value.QueuePrefix.Length == 0);
    }
}
