using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Checks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>Applies quarantines and releases to the shared quarantine table (one replica per event; all read it).</summary>
public sealed class QuarantineConsumer(IQuarantineState quarantine, ILogger<QuarantineConsumer> logger) : IConsumer<AgentQuarantined>, IConsumer<AgentReleased>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<AgentQuarantined> context)
    {
        var m = context.Message;
        await quarantine.ApplyAsync(m.Agent, true, m.QuarantinedAt, context.CancellationToken);
        // The operator's first question about a quarantine is why: the reason is in the log as well as in lineage.
        logger.LogWarning("Agent {Agent} quarantined ({Reason}): {Detail}; intent {IntentId}", m.Agent, m.Reason, m.Detail, m.IntentId);
    }

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<AgentReleased> context)
    {
        var m = context.Message;
        await quarantine.ApplyAsync(m.Agent, false, m.ReleasedAt, context.CancellationToken);
        logger.LogInformation("Agent {Agent} released by {ReleasedBy}", m.Agent, m.ReleasedBy);
    }
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
