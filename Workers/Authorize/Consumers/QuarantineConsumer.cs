using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Checks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Consumers;

/// <summary>
/// Applies quarantines and releases to the shared quarantine table (one replica per event; all read it). A quarantine
/// counts only when signed by its domain's envelope key; a release only when signed by this domain's root (an operator
/// act, <c>meshbus agent release</c>) and when it names the quarantine in force: it lifts that one quarantine and never
/// moves the table's clock, so a later quarantine still applies. Anything else goes to the error queue with the reason.
/// </summary>
public sealed class QuarantineConsumer(IQuarantineState quarantine, GovernanceVerifier verifier, TimeProvider time, IOptions<MeshBusOptions> mesh, ILogger<QuarantineConsumer> logger)
    : IConsumer<AgentQuarantined>, IConsumer<AgentReleased>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<AgentQuarantined> context)
    {
        var m = context.Message;
        var verified = verifier.Verify(m, time.GetUtcNow());
        if (!verified.IsValid)
        {
            throw new MalformedMessageException(typeof(AgentQuarantined), [$"quarantine of {m.Agent} by {m.Domain} refused ({verified.Reason}): {verified.Detail}"]);
        }

        await quarantine.ApplyAsync(m.Agent, true, m.QuarantinedAt, context.CancellationToken);
        // The operator's first question about a quarantine is why: the reason is in the log as well as in lineage.
        logger.LogWarning("Agent {Agent} quarantined ({Reason}): {Detail}; intent {IntentId}", m.Agent, m.Reason, m.Detail, m.IntentId);
    }

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<AgentReleased> context)
    {
        var m = context.Message;
        if (m.Domain != mesh.Value.Domain)
        {
            throw new MalformedMessageException(typeof(AgentReleased), [$"a release by {m.Domain} cannot lift a quarantine in {mesh.Value.Domain}: only this domain's root releases here"]);
        }

        var verified = verifier.Verify(m);
        if (!verified.IsValid)
        {
            throw new MalformedMessageException(typeof(AgentReleased), [$"release of {m.Agent} refused ({verified.Reason}): {verified.Detail}"]);
        }

        if (!await quarantine.ReleaseAsync(m.Agent, m.QuarantinedAt!.Value, context.CancellationToken))
        {
            // Validly signed but stale (the quarantine it names is no longer the one in force) or a redelivery: nothing to lift.
            logger.LogWarning("Release of {Agent} by {ReleasedBy} names the quarantine of {QuarantinedAt:O}, which is not in force; nothing released", m.Agent, m.ReleasedBy, m.QuarantinedAt);
            return;
        }

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
