using MeshBus.Contracts;
using MeshBus.Hosting;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>
/// Governance is not fresh yet: thrown so MassTransit's redelivery re-drives the intent later. Past the bound the
/// intent is denied <see cref="GovernanceReason.SyncStale"/> instead of thrown.
/// </summary>
public sealed class GovernanceNotFreshException(string detail) : Exception("governance not fresh yet: " + detail);

/// <summary>
/// An intent whose sender could not be established (its credential did not verify), so no denial may be routed to
/// anyone: the message goes to the error queue at once with this reason (it would fail the same way on every retry).
/// </summary>
public sealed class UnroutableIntentException(Guid intentId, GovernanceReason reason, string detail)
    : RejectedMessageException($"intent {intentId} rejected ({reason}): {detail}; no verified subject to answer")
{
    /// <summary>Why.</summary>
    public GovernanceReason Reason { get; } = reason;
}

/// <summary>
/// An endorsement whose origin could not be established (missing, malformed, misaddressed, or not signed by a known
/// peer's grant key): nobody may be answered, so the message goes to the error queue with this reason.
/// </summary>
public sealed class UnverifiableEndorsementException(Guid intentId, GovernanceReason reason, string detail)
    : Exception($"endorsement of intent {intentId} rejected ({reason}): {detail}; no verified origin to answer")
{
    /// <summary>Why.</summary>
    public GovernanceReason Reason { get; } = reason;
}

