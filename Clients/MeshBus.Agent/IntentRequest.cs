using System.Text.Json;
using MeshBus.Contracts;

namespace MeshBus.Agent;

/// <summary>What the agent wants to do.</summary>
/// <param name="Action">The action, e.g. <c>deploy</c>.</param>
/// <param name="Resource">The resource, e.g. <c>k8s://cluster-a/ns/web</c>.</param>
public sealed record IntentRequest(string Action, string Resource)
{
    /// <summary>Parameters as a JSON object (integers within ±2^53 or strings).</summary>
    public JsonElement? Parameters { get; init; }

    /// <summary>The longest the agent will run under the grant.</summary>
    public TimeSpan MaxDuration { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The domain that owns the resource; the agent's home domain when null.</summary>
    public string? TargetDomain { get; init; }

    /// <summary>The intent id; a new one when null.</summary>
    public Guid? IntentId { get; init; }
}

/// <summary>The intent was not granted: denied by the mesh, or the grant was refused by the agent's own checks.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Reason">Why.</param>
/// <param name="Detail">Explanation.</param>
/// <param name="RejectedByAgent">True when a grant arrived but failed the agent's verification.</param>
public sealed record Denial(Guid IntentId, GovernanceReason Reason, string Detail, bool RejectedByAgent = false);

/// <summary>The outcome of <see cref="MeshBusAgent.SubmitIntentAsync"/>: a verified lease, or a denial.</summary>
public sealed class IntentOutcome
{
    private IntentOutcome(Lease? lease, Denial? denial)
    {
        Lease = lease;
        Denial = denial;
    }

    /// <summary>The lease, when granted.</summary>
    public Lease? Lease { get; }

    /// <summary>The denial, when not granted.</summary>
    public Denial? Denial { get; }

    /// <summary>Whether a verified grant was received.</summary>
    public bool IsGranted => Lease is not null;

    internal static IntentOutcome Granted(Lease lease) => new(lease, null);

    internal static IntentOutcome Denied(Denial denial) => new(null, denial);
}

/// <summary>No decision arrived within <see cref="MeshBusAgentOptions.DecisionTimeout"/>.</summary>
/// <param name="intentId">The intent.</param>
/// <param name="timeout">The wait.</param>
public sealed class IntentDecisionTimeoutException(Guid intentId, TimeSpan timeout)
    : TimeoutException($"no decision for intent {intentId} within {timeout}")
{
    /// <summary>The intent.</summary>
    public Guid IntentId { get; } = intentId;
}
