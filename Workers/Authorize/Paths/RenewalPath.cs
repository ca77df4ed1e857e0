using MeshBus.Contracts;
using MeshBus.Ledger.Decisions;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Steps;
using Microsoft.Extensions.Logging;

namespace MeshBus.Workers.Authorize.Paths;

/// <summary>
/// Renewal n of a granted intent, or its re-evaluation after a policy change (DESIGN.md §3 phase 6): the stored intent
/// goes through the same steps as a new one (identity checked now, quarantine, freshness, policy) after the execution
/// is shown to be still running (not halted, completed or past its lease: <see cref="ReplayStep.ExecutionEndedAsync"/>),
/// and the renewal is recorded before it is released. A no from policy is a <see cref="GovernanceReason.PolicyRevoked"/>.
/// </summary>
public sealed class RenewalPath(
    IdentityStep identity,
    ReplayStep replay,
    FreshnessStep freshness,
    PolicyStep policy,
    RecordThenReleaseStep release,
    TimeProvider time,
    ILogger<RenewalPath> logger)
{
    /// <summary>Decides renewal <see cref="EvaluateIntent.Renewal"/>; null when nothing was ever decided under the intent id here.</summary>
    public async Task<Decision?> RenewAsync(EvaluateIntent request, int redeliveries, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var (first, previous) = await replay.RenewalRecordsAsync(request.IntentId, request.Renewal, ct);
        if (first is null)
        {
            logger.LogWarning("Renewal {Renewal} of intent {IntentId}: no decision record; nothing to renew", request.Renewal, request.IntentId);
            return null;
        }

        var granted = DecisionRecord.Parse(first.Data);
        if (previous is not null)
        {
            return release.Rebuild(DecisionRecord.Parse(previous.Data), previous.Index);
        }

        if (!granted.Allowed || granted.Lease is null || request.Renewal <= 0)
        {
            return release.Deny(granted.Intent, granted.Agent, GovernanceReason.PolicyRevoked,
                $"intent {request.IntentId} holds no grant to renew (renewal {request.Renewal})");
        }

        return await DecideAsync(request, granted, redeliveries, now, ct);
    }

    private async Task<Decision> DecideAsync(EvaluateIntent request, DecisionRecord granted, int redeliveries, DateTimeOffset now, CancellationToken ct)
    {
        try
        {
            var verified = identity.Renewal(granted, now);
            if (verified.Verified is not { } v)
            {
                return await release.RecordRenewalAsync(granted, request.Renewal, now, PolicyStep.Denied(verified.Refusal!.Reason, verified.Refusal.Detail), ct);
            }

            var outcome = await replay.ExecutionEndedAsync(granted, request.Renewal, redeliveries, now, ct)
                ?? await replay.QuarantinedAsync(granted.Agent, ct)
                ?? await freshness.CheckAsync(granted.Intent.TargetDomain, request.RequestedAt, redeliveries, now, ct)
                ?? policy.Renewal(v, now);
            return await release.RecordRenewalAsync(granted, request.Renewal, now, outcome, ct);
        }
        catch (Exception e) when (e is not GovernanceNotFreshException && !(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            logger.LogError(e, "Renewing intent {IntentId} failed; denying", request.IntentId);
            return release.Deny(granted.Intent, granted.Agent, GovernanceReason.InternalError, "the renewal failed inside the mesh: " + e.GetType().Name);
        }
    }
}
