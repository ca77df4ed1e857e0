using MeshBus.Contracts;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Steps;

/// <summary>
/// Step 3, freshness (DESIGN.md §3 phase 2): this replica's view of a domain involved is fresh. Not yet fresh, the
/// message is redelivered while it is young (<see cref="GovernanceNotFreshException"/>); past the bound it is a
/// <see cref="GovernanceReason.SyncStale"/> denial (<see cref="GovernanceReason.FederationMismatch"/> when a peer still decides
/// under another federation policy), and a domain nobody knows is <see cref="GovernanceReason.UnknownDomain"/>.
/// Freshness never waits for a timer: it is checked on every decision.
/// </summary>
public sealed class FreshnessStep(ISyncState sync, IOptions<AuthorizeOptions> options)
{
    /// <summary>
    /// Null when <paramref name="domain"/> is fresh; the denial when it is unknown or stale past the bound; throws
    /// <see cref="GovernanceNotFreshException"/> while the message (waiting since <paramref name="since"/>, redelivered
    /// <paramref name="redeliveries"/> times) may still wait.
    /// </summary>
    public async ValueTask<PolicyOutcome?> CheckAsync(string domain, DateTimeOffset since, int redeliveries, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var check = await sync.CheckAsync(domain, now, cancellationToken);
        if (check.IsFresh)
        {
            return null;
        }

        if (!check.IsKnown)
        {
            return PolicyStep.Denied(GovernanceReason.UnknownDomain, check.Detail);
        }

        // Not fresh yet: let the redelivery re-drive it while it is young; past the bound, deny.
        var waited = now - since;
        if (redeliveries < options.Value.SyncMaxRedeliveries && waited <= TimeSpan.FromSeconds(options.Value.SyncWaitSeconds))
        {
            throw new GovernanceNotFreshException(check.Detail);
        }

        return PolicyStep.Denied(check.Reason, $"{check.Detail} (waited {waited.TotalSeconds:0.#} s, {redeliveries} redeliveries)");
    }

    /// <summary>Both domains of a cross-domain decision, <paramref name="first"/> first; null when both are fresh.</summary>
    public async ValueTask<PolicyOutcome?> CheckAsync(string first, string second, DateTimeOffset since, int redeliveries, DateTimeOffset now, CancellationToken cancellationToken) =>
        await CheckAsync(first, since, redeliveries, now, cancellationToken) ?? await CheckAsync(second, since, redeliveries, now, cancellationToken);
}
