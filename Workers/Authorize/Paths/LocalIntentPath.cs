using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Steps;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Paths;

/// <summary>
/// An intent submitted on this domain's bus (DESIGN.md §3 phases 2–3): identity → replay → freshness → policy → record
/// then release. Targeting this domain, the answer is a grant or a denial; targeting another, it is this domain's egress
/// decision, released as an endorsement for the bridge. Fail closed: every path that is not an explicit allow after a
/// durable record ends in a denial, a redelivery or the error queue.
/// </summary>
public sealed class LocalIntentPath(
    IdentityStep identity,
    ReplayStep replay,
    FreshnessStep freshness,
    PolicyStep policy,
    RecordThenReleaseStep release,
    TimeProvider time,
    IOptions<MeshBusOptions> mesh,
    ILogger<LocalIntentPath> logger)
{
    private string Domain => mesh.Value.Domain;

    /// <summary>Decides a submitted intent. <paramref name="redeliveries"/> is the message's redelivery count.</summary>
    public async Task<Decision> AuthorizeAsync(IntentSubmitted intent, int redeliveries, CancellationToken cancellationToken)
    {
        using var activity = MeshBusServiceCollectionExtensions.ActivitySource.StartActivity("authorize intent");
        activity?.SetTag("meshbus.intent_id", intent.IntentId);
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        var now = time.GetUtcNow();
        var lookups = replay.Begin(intent, cancellationToken);
        try
        {
            return DecisionMetrics.Count(await DecideAsync(intent, redeliveries, now, lookups, cancellationToken), startedAt);
        }
        finally
        {
            await lookups.SettleAsync();
        }
    }

    private async Task<Decision> DecideAsync(IntentSubmitted intent, int redeliveries, DateTimeOffset now, ReplayLookups lookups, CancellationToken ct)
    {
        // 1. Who sent it: only a verified credential's subject may ever receive an answer.
        var (credential, refusal) = identity.Sender(intent, now);
        if (credential is null)
        {
            return release.Deny(intent, refusal!.VerifiedSubject!, refusal.Reason, refusal.Detail);
        }

        try
        {
            // ... and holds its key, for a well-formed intent of its own.
            var verified = identity.Local(intent, credential);
            if (verified.Verified is not { } v)
            {
                return release.Deny(intent, credential.Subject, verified.Refusal!.Reason, verified.Refusal.Detail);
            }

            // 2. Replay (record, nonce), age, quarantine.
            if (await replay.CheckAsync(v, lookups, now, ct) is { } verdict)
            {
                return await release.ReleaseAsync(v, verdict, now, ct);
            }

            // 3–5. Freshness (this replica's own view), policy, record then release. Cross-domain, the target decides:
            // here the egress decision, recorded (kind egress) before it is released as an endorsement; the target must be
            // a known, fresh peer and this domain fresh too.
            var outcome = intent.TargetDomain != Domain
                ? await freshness.CheckAsync(intent.TargetDomain, Domain, intent.IssuedAt, redeliveries, now, ct) ?? policy.Egress(v, now)
                : await freshness.CheckAsync(intent.TargetDomain, intent.IssuedAt, redeliveries, now, ct) ?? policy.Target(v, now);
            return await release.RecordAsync(v, now, outcome, ct);
        }
        catch (Exception e) when (e is not GovernanceNotFreshException && !(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            logger.LogError(e, "Deciding intent {IntentId} failed; denying", intent.IntentId);
            return release.Deny(intent, credential.Subject, GovernanceReason.InternalError, "the decision failed inside the mesh: " + e.GetType().Name);
        }
    }
}
