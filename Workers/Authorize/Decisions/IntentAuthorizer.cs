using System.Diagnostics;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Federation;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>
/// Decides one intent or renewal: checks → policy → record → sign (DESIGN.md §3 phases 2–3). Fail closed: every path
/// that is not an explicit allow after a durable record ends in a denial, a redelivery or the error queue.
/// </summary>
public sealed class IntentAuthorizer(
    IIntentVerifier verifier,
    IDecisionPolicy policy,
    IGrantSigner signer,
    EgressEndorser endorser,
    ISyncState sync,
    IQuarantineState quarantine,
    INonceStore nonces,
    ILineageLog lineage,
    TimeProvider time,
    IOptions<AuthorizeOptions> options,
    IOptions<MeshBusOptions> mesh,
    ILogger<IntentAuthorizer> logger)
{
    private static readonly System.Diagnostics.Metrics.Counter<long> Decisions =
        MeshBusServiceCollectionExtensions.Meter.CreateCounter<long>("meshbus.authorize.decisions", description: "Decisions by outcome and reason");

    private string Domain => mesh.Value.Domain;

    private TimeSpan LineageBound => TimeSpan.FromMilliseconds(options.Value.LineageTimeoutMs);

    /// <summary>Decides a submitted intent. <paramref name="redeliveries"/> is the message's redelivery count.</summary>
    public async Task<Decision> AuthorizeAsync(IntentSubmitted intent, int redeliveries, CancellationToken cancellationToken)
    {
        using var activity = MeshBusServiceCollectionExtensions.ActivitySource.StartActivity("authorize intent");
        activity?.SetTag("meshbus.intent_id", intent.IntentId);
        var now = time.GetUtcNow();

        // Reads that do not depend on the verification start first and run beside it (one round trip, not two).
        var recordLookup = intent.IntentId == Guid.Empty
            ? Task.FromResult<LineageRecord?>(null)
            : lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId), cancellationToken).WaitAsync(LineageBound, time, cancellationToken);
        var quarantineLookup = string.IsNullOrEmpty(intent.Agent)
            ? Task.FromResult(false)
            : quarantine.IsQuarantinedAsync(intent.Agent, cancellationToken);
        try
        {
            var decision = await DecideAsync(intent, redeliveries, now, recordLookup, quarantineLookup, cancellationToken);
            Count(decision);
            return decision;
        }
        finally
        {
            // Observe both lookups whatever happened, so a failure of one never goes unobserved.
            await Task.WhenAll(recordLookup, quarantineLookup).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task<Decision> DecideAsync(
        IntentSubmitted intent,
        int redeliveries,
        DateTimeOffset now,
        Task<LineageRecord?> recordLookup,
        Task<bool> quarantineLookup,
        CancellationToken ct)
    {
        // 1. Who sent it: only a verified credential's subject may ever receive an answer.
        if (string.IsNullOrEmpty(intent.Credential))
        {
            throw new UnroutableIntentException(intent.IntentId, GovernanceReason.MalformedInput, "credential is missing");
        }

        var (credential, failure) = verifier.VerifyCredential(intent.Credential, now);
        if (credential is null)
        {
            failure ??= new CheckFailure(GovernanceReason.CredentialInvalid, "credential did not verify");
            if (failure.VerifiedSubject is { } subject)
            {
                return Deny(intent, subject, failure.Reason, failure.Detail);
            }

            throw new UnroutableIntentException(intent.IntentId, failure.Reason, failure.Detail);
        }

        var agent = credential.Subject;
        try
        {
            if (credential.Subject != intent.Agent || credential.Domain != intent.Domain)
            {
                return Deny(intent, agent, GovernanceReason.CredentialInvalid,
                    $"the credential names {credential.Subject} of {credential.Domain}, the intent {intent.Agent} of {intent.Domain}");
            }

            if (credential.Domain != Domain)
            {
                // A peer's agent reaches this domain only endorsed by its home (IntentEndorsed), never around its egress policy.
                return Deny(intent, agent, GovernanceReason.CredentialInvalid,
                    $"{agent} is an agent of {credential.Domain}: its intents are decided here only with its home domain's endorsement");
            }

            // 2. Shape, then proof of possession.
            if (IntentShape.Problem(intent) is { } problem)
            {
                return Deny(intent, agent, GovernanceReason.MalformedInput, problem);
            }

            var digest = verifier.VerifyIntent(intent, credential.AgentKey);
            if (digest is null)
            {
                return Deny(intent, agent, GovernanceReason.SignatureInvalid, "the intent signature does not verify with the credential's cnf key");
            }

            // 3–4. Replay (record, nonce), age, quarantine.
            if (await ReplayAgeQuarantineAsync(intent, credential, digest, now, recordLookup, quarantineLookup, ct) is { } early)
            {
                return early;
            }

            // Governance freshness (this replica's own view).
            if (intent.TargetDomain != Domain)
            {
                // Cross-domain: the target decides. Here the egress decision, recorded (kind egress) before it is released
                // as an endorsement for the bridge; the target must be a known, fresh peer and this domain fresh too.
                if (!Fresh(intent.TargetDomain, intent, redeliveries, now, out var notFresh) || !Fresh(Domain, intent, redeliveries, now, out notFresh))
                {
                    return await RecordAsync(intent, credential, digest, now, notFresh, ct);
                }

                return await RecordAsync(intent, credential, digest, now, endorser.Decide(intent, credential, now), ct);
            }

            if (!Fresh(intent.TargetDomain, intent, redeliveries, now, out var stale))
            {
                return await RecordAsync(intent, credential, digest, now, stale, ct);
            }

            // 5. Policy: an error is never an allow.
            PolicyOutcome outcome;
            try
            {
                outcome = policy.Decide(intent, credential, now);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Policy evaluation failed for intent {IntentId}", intent.IntentId);
                outcome = new PolicyOutcome(false, GovernanceReason.PolicyError, "policy evaluation failed: " + e.Message, [], null, policy.LoadedEpoch, "");
            }

            if (outcome.Allowed && outcome.Reason != GovernanceReason.None)
            {
                outcome = outcome with { Allowed = false };
            }

            return await RecordAsync(intent, credential, digest, now, outcome, ct);
        }
        catch (Exception e) when (e is not GovernanceNotFreshException && !(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            logger.LogError(e, "Deciding intent {IntentId} failed; denying", intent.IntentId);
            return Deny(intent, agent, GovernanceReason.InternalError, "the decision failed inside the mesh: " + e.GetType().Name);
        }
    }

    /// <summary>Re-evaluates a granted intent for renewal n (or after a policy change).</summary>
    public async Task<Decision?> RenewAsync(EvaluateIntent request, int redeliveries, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        LineageRecord? first;
        LineageRecord? previous;
        try
        {
            var firstLookup = lineage.GetByKeyAsync(DecisionRecord.DecisionKey(request.IntentId), ct).WaitAsync(LineageBound, time, ct);
            var renewalLookup = lineage.GetByKeyAsync(DecisionRecord.RenewalKey(request.IntentId, request.Renewal), ct).WaitAsync(LineageBound, time, ct);
            first = await firstLookup;
            previous = await renewalLookup;
        }
        catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            // Without the record there is no verified agent to answer: redeliver, then the error queue.
            throw new InvalidOperationException($"lineage unavailable while renewing intent {request.IntentId}", e);
        }

        if (first is null)
        {
            logger.LogWarning("Renewal {Renewal} of intent {IntentId}: no decision record; nothing to renew", request.Renewal, request.IntentId);
            return null;
        }

        var granted = DecisionRecord.Parse(first.Data);
        var intent = granted.Intent;
        var agent = granted.Agent;
        if (previous is not null)
        {
            return Rebuild(DecisionRecord.Parse(previous.Data), previous.Index);
        }

        if (!granted.Allowed || granted.Lease is null || request.Renewal <= 0)
        {
            return Deny(intent, agent, GovernanceReason.PolicyRevoked, $"intent {request.IntentId} holds no grant to renew (renewal {request.Renewal})");
        }

        try
        {
            var (credential, failure) = verifier.VerifyCredential(intent.Credential, now);
            if (credential is null)
            {
                failure ??= new CheckFailure(GovernanceReason.CredentialInvalid, "credential did not verify");
                return await RecordRenewalAsync(granted, request.Renewal, now, Denied(failure.Reason, failure.Detail), ct);
            }

            if (verifier.VerifyIntent(intent, credential.AgentKey) != granted.IntentDigest)
            {
                return await RecordRenewalAsync(granted, request.Renewal, now, Denied(GovernanceReason.SignatureInvalid, "the stored intent no longer verifies"), ct);
            }

            if (await quarantine.IsQuarantinedAsync(agent, ct))
            {
                return await RecordRenewalAsync(granted, request.Renewal, now, Denied(GovernanceReason.Quarantined, $"{agent} is quarantined"), ct);
            }

            var check = sync.Check(intent.TargetDomain, now);
            if (!check.IsFresh)
            {
                if (check.IsKnown && redeliveries < options.Value.SyncMaxRedeliveries && now - request.RequestedAt <= TimeSpan.FromSeconds(options.Value.SyncWaitSeconds))
                {
                    throw new GovernanceNotFreshException(check.Detail);
                }

                return await RecordRenewalAsync(granted, request.Renewal, now, Denied(check.IsKnown ? GovernanceReason.SyncStale : GovernanceReason.UnknownDomain, check.Detail), ct);
            }

            PolicyOutcome outcome;
            try
            {
                outcome = policy.Decide(intent, credential, now);
            }
            catch (Exception e)
            {
                outcome = new PolicyOutcome(false, GovernanceReason.PolicyError, "policy evaluation failed: " + e.Message, [], null, policy.LoadedEpoch, "");
            }

            if (!outcome.Allowed || outcome.Reason != GovernanceReason.None)
            {
                // A renewal that policy no longer allows is a revocation, whatever rule said no.
                outcome = outcome with { Allowed = false, Detail = $"{outcome.Reason}: {outcome.Detail}", Reason = GovernanceReason.PolicyRevoked };
            }

            return await RecordRenewalAsync(granted, request.Renewal, now, outcome, ct);
        }
        catch (Exception e) when (e is not GovernanceNotFreshException && !(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            logger.LogError(e, "Renewing intent {IntentId} failed; denying", request.IntentId);
            return Deny(intent, agent, GovernanceReason.InternalError, "the renewal failed inside the mesh: " + e.GetType().Name);
        }
    }

    /// <summary>
    /// Whether this replica's view of <paramref name="domain"/> is fresh; not yet → <see cref="GovernanceNotFreshException"/>
    /// (redelivery) while the intent is young, then a <see cref="GovernanceReason.SyncStale"/> (or unknown domain) outcome.
    /// </summary>
    internal bool Fresh(string domain, IntentSubmitted intent, int redeliveries, DateTimeOffset now, out PolicyOutcome stale)
    {
        var check = sync.Check(domain, now);
        if (check.IsFresh)
        {
            stale = null!;
            return true;
        }

        if (!check.IsKnown)
        {
            stale = Denied(GovernanceReason.UnknownDomain, check.Detail);
            return false;
        }

        // Not fresh yet: let the redelivery re-drive it while the intent is young; past the bound, deny.
        var waited = now - intent.IssuedAt;
        if (redeliveries < options.Value.SyncMaxRedeliveries && waited <= TimeSpan.FromSeconds(options.Value.SyncWaitSeconds))
        {
            throw new GovernanceNotFreshException(check.Detail);
        }

        stale = Denied(GovernanceReason.SyncStale, $"{check.Detail} (waited {waited.TotalSeconds:0.#} s, {redeliveries} redeliveries)");
        return false;
    }

    /// <summary>
    /// The checks every verified intent passes before freshness and policy, on both sides of a cross-domain intent: the
    /// decision record is the dedupe (a redelivery finds it and rebuilds exactly what was decided); the nonce is claimed
    /// beside the lookup (only now: a verified signature proves the agent spent it); then age and quarantine. Returns
    /// the decision when one of them decides, null to go on.
    /// </summary>
    internal async Task<Decision?> ReplayAgeQuarantineAsync(
        IntentSubmitted intent,
        VerifiedCredential credential,
        string digest,
        DateTimeOffset now,
        Task<LineageRecord?> recordLookup,
        Task<bool> quarantineLookup,
        CancellationToken ct)
    {
        var agent = credential.Subject;
        var nonceClaim = nonces.ClaimAsync(agent, intent.Nonce, intent.IntentId, NonceKeepUntil(intent, now), ct);
        LineageRecord? existing;
        try
        {
            existing = await recordLookup;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Observe(nonceClaim);
            return LineageDown(intent, agent, e);
        }

        if (existing is not null)
        {
            Observe(nonceClaim);
            return Replay(intent, agent, digest, existing);
        }

        var nonceHolder = await nonceClaim;
        if (nonceHolder != intent.IntentId)
        {
            return await RecordAsync(intent, credential, digest, now, Denied(GovernanceReason.ReplayDetected,
                $"nonce '{intent.Nonce}' of {agent} was already used by intent {nonceHolder}"), ct);
        }

        if (now - intent.IssuedAt > TimeSpan.FromSeconds(options.Value.MaxIntentAgeSeconds))
        {
            return await RecordAsync(intent, credential, digest, now, Denied(GovernanceReason.ReplayDetected,
                $"the intent was issued at {intent.IssuedAt:O}, more than {options.Value.MaxIntentAgeSeconds} s ago"), ct);
        }

        if (intent.IssuedAt - now > TimeSpan.FromSeconds(options.Value.ClockSkewSeconds))
        {
            return await RecordAsync(intent, credential, digest, now, Denied(GovernanceReason.MalformedInput,
                $"the intent is dated {intent.IssuedAt:O}, in the future"), ct);
        }

        return await quarantineLookup
            ? await RecordAsync(intent, credential, digest, now, Denied(GovernanceReason.Quarantined, $"{agent} is quarantined"), ct)
            : null;
    }

    internal DateTimeOffset NonceKeepUntil(IntentSubmitted intent, DateTimeOffset now) =>
        (intent.IssuedAt > now ? intent.IssuedAt : now) + TimeSpan.FromSeconds(options.Value.MaxIntentAgeSeconds + options.Value.ClockSkewSeconds);

    /// <summary>A side task whose result no longer matters: its failure is observed, never unobserved.</summary>
    internal static void Observe(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);

    internal PolicyOutcome Denied(GovernanceReason reason, string detail) =>
        new(false, reason, detail, [], null, -1, "");

    /// <summary>Records the decision on a verified intent, then releases it (grant, endorsement or denial); shared with the target's side.</summary>
    internal async Task<Decision> RecordAsync(IntentSubmitted intent, VerifiedCredential credential, string digest, DateTimeOffset now, PolicyOutcome outcome, CancellationToken ct)
    {
        var egress = intent.TargetDomain != Domain;
        LeaseClaims? lease = null;
        if (outcome.Allowed && !egress)
        {
            var seconds = Math.Min(outcome.MaxLeaseSeconds ?? options.Value.DefaultLeaseSeconds, intent.MaxDurationSeconds);
            var iat = now.ToUnixTimeSeconds();
            lease = new LeaseClaims(
                intent.IntentId.ToString("D"), Domain, credential.Subject, intent.TargetDomain, intent.IntentId, digest, intent.Action, intent.Resource, credential.AgentKey,
                iat, iat + Math.Max(1, seconds), outcome.Epoch, outcome.Digest, outcome.FederationEpoch, outcome.FederationDigest, 0)
            { FederationName = outcome.FederationName };
        }

        var record = new DecisionRecord(
            egress ? DecisionRecord.EgressKind : "decision", intent.IntentId, 0, Domain, credential.Subject, intent.TargetDomain, digest, outcome.Allowed, outcome.Allowed ? GovernanceReason.None : outcome.Reason,
            outcome.Detail, outcome.MatchedRules, outcome.Epoch, outcome.Digest, outcome.FederationEpoch, outcome.FederationDigest,
            verifier.KeySetSequence, now.ToUnixTimeMilliseconds(), lease, intent)
        {
            Endorsement = outcome.Allowed && egress ? endorser.Terms(now) : null,
        };
        return await AppendThenReleaseAsync(record, credential.Subject, digest, ct);
    }

    private async Task<Decision> RecordRenewalAsync(DecisionRecord granted, int renewal, DateTimeOffset now, PolicyOutcome outcome, CancellationToken ct)
    {
        LeaseClaims? lease = null;
        if (outcome.Allowed)
        {
            var seconds = Math.Min(outcome.MaxLeaseSeconds ?? options.Value.DefaultLeaseSeconds, granted.Intent.MaxDurationSeconds);
            var iat = now.ToUnixTimeSeconds();
            lease = granted.Lease! with
            {
                GrantId = $"{granted.IntentId:D}:{renewal}",
                IssuedAt = iat,
                ExpiresAt = iat + Math.Max(1, seconds),
                PolicyEpoch = outcome.Epoch,
                PolicyDigest = outcome.Digest,
                FederationEpoch = outcome.FederationEpoch,
                FederationDigest = outcome.FederationDigest,
                FederationName = outcome.FederationName,
                Renewal = renewal,
            };
        }

        var record = granted with
        {
            Kind = "renewal",
            Renewal = renewal,
            Allowed = outcome.Allowed,
            Reason = outcome.Allowed ? GovernanceReason.None : outcome.Reason,
            Detail = outcome.Detail,
            MatchedRules = outcome.MatchedRules,
            PolicyEpoch = outcome.Epoch,
            PolicyDigest = outcome.Digest,
            FederationEpoch = outcome.FederationEpoch,
            FederationDigest = outcome.FederationDigest,
            KeySetSequence = verifier.KeySetSequence,
            DecidedAt = now.ToUnixTimeMilliseconds(),
            Lease = lease,
        };
        return await AppendThenReleaseAsync(record, granted.Agent, granted.IntentDigest, ct);
    }

    private async Task<Decision> AppendThenReleaseAsync(DecisionRecord record, string agent, string digest, CancellationToken ct)
    {
        AppendResult appended;
        try
        {
            // The only durable step of the critical path: acknowledged after commit, group-committed with its neighbours.
            appended = await lineage.AppendAsync(new LineageEntry(record.Key, record.EntryType, record.ToBytes()), ct)
                .WaitAsync(LineageBound, time, ct);
        }
        catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            return LineageDown(record.Intent, agent, e);
        }

        if (appended.AlreadyPresent)
        {
            // Another replica (or an earlier delivery) recorded first: its record is the decision.
            return Replay(record.Intent, agent, digest, new LineageRecord(appended.Index, record.Key, appended.StoredType, appended.StoredData, default));
        }

        return Rebuild(record, appended.Index);
    }

    internal Decision Replay(IntentSubmitted intent, string agent, string digest, LineageRecord existing)
    {
        var stored = DecisionRecord.Parse(existing.Data);
        if (stored.IntentDigest != digest || stored.Agent != agent)
        {
            return Deny(intent, agent, GovernanceReason.ReplayDetected,
                $"intent id {intent.IntentId} was decided before (lineage index {existing.Index}) for another intent digest; this one is not recorded");
        }

        return Rebuild(stored, existing.Index);
    }

    private Decision Rebuild(DecisionRecord record, long index)
    {
        var intent = record.Renewal == 0 ? record.Intent : null;
        if (record.Kind == DecisionRecord.EgressKind && record.Allowed)
        {
            return endorser.Release(record, index) with { Recorded = true, Intent = intent };
        }

        if (!record.Allowed || record.Lease is null)
        {
            return new Decision(record.Agent, new GrantDenied(record.IntentId, Domain, record.Agent, record.Reason, record.Detail, index, record.MatchedRules))
            {
                Recorded = true,
                Intent = intent,
            };
        }

        var grant = signer.Sign(record.Lease, index);
        var expires = DateTimeOffset.FromUnixTimeSeconds(record.Lease.ExpiresAt);
        object message = record.Renewal == 0
            ? new GrantIssued(record.IntentId, Domain, record.Agent, grant, index, expires)
            : new GrantRenewed(record.IntentId, Domain, record.Agent, grant, index, expires, record.Renewal);
        return new Decision(record.Agent, message) { Recorded = true, Intent = intent };
    }

    internal Decision LineageDown(IntentSubmitted intent, string agent, Exception e)
    {
        logger.LogWarning(e, "Lineage unavailable deciding intent {IntentId}", intent.IntentId);
        var detail = e is TimeoutException
            ? $"the lineage log did not acknowledge the decision within {options.Value.LineageTimeoutMs} ms; no grant was released and this denial is not " +
              "recorded (an append still under way may record the decision later: resubmitting the same intent then returns the recorded decision)"
            : $"the decision could not be recorded in the lineage log ({e.GetType().Name}: {e.Message}); no grant, and this denial is not recorded either";
        return Deny(intent, agent, GovernanceReason.LineageUnavailable, detail);
    }

    internal Decision Deny(IntentSubmitted intent, string agent, GovernanceReason reason, string detail)
    {
        return new Decision(agent, new GrantDenied(intent.IntentId, Domain, agent, reason, detail, null, []));
    }

    internal static void Count(Decision decision)
    {
        var reason = decision.Message is GrantDenied d ? d.Reason.ToString() : "None";
        var outcome = decision.Message switch { GrantDenied => "deny", IntentEndorsed => "endorse", _ => "allow" };
        Decisions.Add(1, new KeyValuePair<string, object?>("outcome", outcome), new KeyValuePair<string, object?>("reason", reason));
        Activity.Current?.SetTag("meshbus.outcome", outcome);
    }
}
