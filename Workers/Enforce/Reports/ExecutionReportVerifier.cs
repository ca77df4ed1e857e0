using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Enforce.Lifecycle;
using Microsoft.Extensions.Logging;

namespace MeshBus.Workers.Enforce.Reports;

/// <summary>
/// Checks an execution report from the agent ingress against what the execution's saga recorded when the grant was
/// issued: the agent it was granted to, and that agent's key (the grant's <c>cnf</c>). A report that is unsigned,
/// mis-signed, from another agent, or a replayed heartbeat is refused (<see cref="RejectedMessageException"/>: the error
/// queue at once, counted); a report for an intent whose grant this domain has not recorded yet may still verify later,
/// so it is retried and redelivered (<see cref="ReportNotYetVerifiableException"/>).
/// </summary>
public sealed class ExecutionReportVerifier(ISagaStateReader states, ILogger<ExecutionReportVerifier> logger)
{
    /// <summary>Returns when <paramref name="report"/> may be published to the workers; throws otherwise.</summary>
    public async Task VerifyAsync(object report, CancellationToken cancellationToken)
    {
        var (intentId, agent) = report switch
        {
            ExecutionStarted m => (m.IntentId, m.Agent),
            ExecutionHeartbeat m => (m.IntentId, m.Agent),
            ExecutionCompleted m => (m.IntentId, m.Agent),
            ExecutionHalted m => (m.IntentId, m.Agent),
            _ => throw new ArgumentException($"{report.GetType().Name} is not an execution report", nameof(report)),
        };
        var name = report.GetType().Name;
        if (string.IsNullOrEmpty(ExecutionReportSignature.SignatureOf(report)))
        {
            // Before any lookup: an unsigned report can never verify.
            Reject(name, intentId, "unsigned", "it carries no signature");
        }

        var saga = await states.LoadAsync<IntentLifecycleState>(intentId, cancellationToken);
        if (saga?.AgentKey is not { Length: > 0 } agentKey || saga.Agent.Length == 0)
        {
            throw new ReportNotYetVerifiableException($"{name} for intent {intentId}: no grant is recorded for it yet, so there is no agent key to check it with");
        }

        if (!string.Equals(saga.Agent, agent, StringComparison.Ordinal))
        {
            Reject(name, intentId, "foreign", $"the execution belongs to another agent, not {agent}");
        }

        if (!Base64Url.TryDecode(agentKey, out var publicKey) || !ExecutionReportSignature.Verify(report, publicKey))
        {
            Reject(name, intentId, "signature", "its signature does not verify with the key the grant was bound to (cnf)");
        }

        if (report is ExecutionHeartbeat heartbeat && heartbeat.Sequence <= saga.LastHeartbeatSequence)
        {
            Reject(name, intentId, "replay", $"heartbeat {heartbeat.Sequence} is not newer than {saga.LastHeartbeatSequence}, already seen");
        }
    }

    private void Reject(string type, Guid intentId, string label, string why)
    {
        AgentIngressEndpoint.CountRejection(AgentIngress.ReportsExchange, label);
        logger.LogWarning("Rejected {Type} for intent {IntentId} at the agent ingress: {Why}", type, intentId, why);
        throw new RejectedMessageException($"{type} for intent {intentId} rejected ({label}): {why}");
    }
}

/// <summary>A report whose execution has no recorded grant yet: retried and redelivered, then the error queue with this reason.</summary>
public sealed class ReportNotYetVerifiableException(string message) : Exception(message);

/// <summary>The verification step of the report ingress: every report passes <see cref="ExecutionReportVerifier"/> before any consumer sees it (STYLE.md 7).</summary>
internal sealed class ExecutionReportVerificationFilter(ExecutionReportVerifier verifier) : IFilter<ConsumeContext>
{
    public async Task Send(ConsumeContext context, IPipe<ConsumeContext> next)
    {
        object? report = null;
        if (context.TryGetMessage<ExecutionStarted>(out var started))
        {
            report = started.Message;
        }
        else if (context.TryGetMessage<ExecutionHeartbeat>(out var heartbeat))
        {
            report = heartbeat.Message;
        }
        else if (context.TryGetMessage<ExecutionCompleted>(out var completed))
        {
            report = completed.Message;
        }
        else if (context.TryGetMessage<ExecutionHalted>(out var halted))
        {
            report = halted.Message;
        }

        // The ingress filter before this one let through only report types; an unreadable body fails at dispatch.
        if (report is not null)
        {
            await verifier.VerifyAsync(report, context.CancellationToken);
        }

        await next.Send(context);
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("meshbus-execution-report-verification");
}
