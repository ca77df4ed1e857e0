using MeshBus.Contracts;

namespace MeshBus.Workers.Authorize.Federation;

/// <summary>
/// An endorsement whose origin could not be established (missing, malformed, or not signed by a known peer's grant key):
/// nobody may be answered, so the message goes to the error queue with this reason.
/// </summary>
public sealed class UnverifiableEndorsementException(Guid intentId, GovernanceReason reason, string detail)
    : Exception($"endorsement of intent {intentId} rejected ({reason}): {detail}; no verified origin to answer")
{
    /// <summary>Why.</summary>
    public GovernanceReason Reason { get; } = reason;
}
