using MeshBus.Contracts;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Logging;

namespace MeshBus.Workers.Authorize.Steps;

/// <summary>
/// Step 4, policy: this domain's decision on a verified intent, as the target (domain policy), as the origin (egress
/// policy), on an endorsed intent (with the origin's federation digest) and on a renewal (a no is a revocation). Fail
/// closed in one place: an evaluation error is a <see cref="GovernanceReason.PolicyError"/> denial (logged with its
/// exception), and an "allow" that carries a reason is not an allow.
/// </summary>
public sealed class PolicyStep(IDecisionPolicy policy, IEgressPolicy egress, ILogger<PolicyStep> logger)
{
    /// <summary>An outcome of a check that failed before policy was evaluated (no epoch, no digest).</summary>
    public static PolicyOutcome Denied(GovernanceReason reason, string detail) => new(false, reason, detail, [], null, -1, "");

    /// <summary>The domain policy's decision on an intent that targets this domain.</summary>
    public PolicyOutcome Target(VerifiedIntent v, DateTimeOffset now) =>
        Evaluate("policy", v.Intent.IntentId, policy.LoadedEpoch, () => policy.Decide(v.Intent, v.Credential, now));

    /// <summary>The egress policy's decision on an intent of this domain's agent that targets another domain.</summary>
    public PolicyOutcome Egress(VerifiedIntent v, DateTimeOffset now) =>
        Evaluate("egress policy", v.Intent.IntentId, egress.LoadedEpoch, () => egress.Decide(v.Intent, v.Credential, now));

    /// <summary>
    /// The domain policy's decision on an endorsed intent: the federation policy it decided under must be the one the
    /// origin decided under (<paramref name="originFederationDigest"/>), else <see cref="GovernanceReason.FederationMismatch"/>.
    /// </summary>
    public PolicyOutcome Endorsed(VerifiedIntent v, string origin, string? originFederationDigest, DateTimeOffset now) =>
        Evaluate("policy", v.Intent.IntentId, policy.LoadedEpoch, () =>
        {
            var outcome = policy.Decide(v.Intent, v.Credential, now);
            var mine = outcome.FederationDigest ?? "";
            var theirs = originFederationDigest ?? "";
            return mine == theirs ? outcome : outcome with
            {
                Allowed = false,
                Reason = GovernanceReason.FederationMismatch,
                Detail = $"{origin} decided under federation policy '{theirs}', this domain under '{mine}' (policy said: {outcome.Reason} {outcome.Detail})",
            };
        });

    /// <summary>The domain policy's decision on a renewal: anything but an allow is <see cref="GovernanceReason.PolicyRevoked"/>.</summary>
    public PolicyOutcome Renewal(VerifiedIntent v, DateTimeOffset now)
    {
        var outcome = Target(v, now);
        return outcome.Allowed
            ? outcome
            : outcome with { Detail = $"{outcome.Reason}: {outcome.Detail}", Reason = GovernanceReason.PolicyRevoked };
    }

    private PolicyOutcome Evaluate(string what, Guid intentId, long loadedEpoch, Func<PolicyOutcome> decide)
    {
        PolicyOutcome outcome;
        try
        {
            outcome = decide();
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "The {What} evaluation failed for intent {IntentId}", what, intentId);
            return new PolicyOutcome(false, GovernanceReason.PolicyError, what + " evaluation failed: " + e.Message, [], null, loadedEpoch, "");
        }

        return outcome.Allowed && outcome.Reason != GovernanceReason.None ? outcome with { Allowed = false } : outcome;
    }
}
