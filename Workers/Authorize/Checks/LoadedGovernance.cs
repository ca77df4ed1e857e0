using MeshBus.Workers.Authorize.Decisions;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>What the verifier and the policy engine of this replica have loaded.</summary>
public sealed class LoadedGovernance(IIntentVerifier verifier, IDecisionPolicy policy) : ILoadedGovernance
{
    /// <inheritdoc />
    public long KeySetSequence => verifier.KeySetSequence;

    /// <inheritdoc />
    public long DomainPolicyEpoch => policy.LoadedEpoch;

    /// <inheritdoc />
    public string FederationPolicyDigest => policy.LoadedFederationDigest;
}
