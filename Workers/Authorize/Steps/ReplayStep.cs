using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Steps;

/// <summary>What the replay step found: go on (null), or one of these.</summary>
public abstract record ReplayVerdict
{
    /// <summary>The intent id was decided before: the stored record is the decision (or, for another digest, a replay).</summary>
    /// <param name="Existing">The stored decision record.</param>
    public sealed record AlreadyDecided(LineageRecord Existing) : ReplayVerdict;

    /// <summary>The lineage log could not say whether the intent was decided: no grant.</summary>
    /// <param name="Error">What failed.</param>
    public sealed record LineageUnavailable(Exception Error) : ReplayVerdict;

    /// <summary>A refusal to record: a spent nonce, an intent too old or from the future, a quarantined agent.</summary>
    /// <param name="Outcome">The denial.</param>
    public sealed record Refused(PolicyOutcome Outcome) : ReplayVerdict;
}

/// <summary>The reads of the replay step that start beside the identity step (one round trip, not two).</summary>
public sealed class ReplayLookups
{
    internal ReplayLookups(Task<LineageRecord?> record, Task<bool> quarantined)
    {
        Record = record;
        Quarantined = quarantined;
    }

    internal Task<LineageRecord?> Record { get; }

    internal Task<bool> Quarantined { get; }

    /// <summary>Waits for both lookups whatever happened, so a failure of one never goes unobserved.</summary>
    public Task SettleAsync() => Task.WhenAll(Record, Quarantined).ContinueWith(_ => { }, TaskScheduler.Default);
}

/// <summary>
/// Step 2, replay: the decision record is the dedupe (a redelivery finds it and rebuilds exactly what was decided); the
/// nonce is claimed beside the lookup (only after identity: a verified signature proves the agent spent it); then the
/// intent's age, and whether its agent is quarantined. Renewals are deduplicated by their own record key.
/// </summary>
public sealed class ReplayStep(INonceStore nonces, IQuarantineState quarantine, ILineageLog lineage, TimeProvider time, IOptions<AuthorizeOptions> options)
{
    private TimeSpan LineageBound => TimeSpan.FromMilliseconds(options.Value.LineageTimeoutMs);

    /// <summary>Starts the record and quarantine lookups of <paramref name="intent"/> (before its identity is verified).</summary>
    public ReplayLookups Begin(IntentSubmitted intent, CancellationToken ct) => new(
        intent.IntentId == Guid.Empty ? Task.FromResult<LineageRecord?>(null) : FindAsync(DecisionRecord.DecisionKey(intent.IntentId), ct),
        string.IsNullOrEmpty(intent.Agent) ? Task.FromResult(false) : quarantine.IsQuarantinedAsync(intent.Agent, ct));

    /// <summary>Null to go on; otherwise what decides the verified intent.</summary>
    public async Task<ReplayVerdict?> CheckAsync(VerifiedIntent v, ReplayLookups lookups, DateTimeOffset now, CancellationToken ct)
    {
        var intent = v.Intent;
        var nonceClaim = nonces.ClaimAsync(v.Agent, intent.Nonce, intent.IntentId, NonceKeepUntil(intent, now), ct);
        LineageRecord? existing;
        try
        {
            existing = await lookups.Record;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Observe(nonceClaim);
            return new ReplayVerdict.LineageUnavailable(e);
        }

        if (existing is not null)
        {
            Observe(nonceClaim);
            return new ReplayVerdict.AlreadyDecided(existing);
        }

        var nonceHolder = await nonceClaim;
        if (nonceHolder != intent.IntentId)
        {
            return Refuse(GovernanceReason.ReplayDetected, $"nonce '{intent.Nonce}' of {v.Agent} was already used by intent {nonceHolder}");
        }

        if (now - intent.IssuedAt > TimeSpan.FromSeconds(options.Value.MaxIntentAgeSeconds))
        {
            return Refuse(GovernanceReason.ReplayDetected, $"the intent was issued at {intent.IssuedAt:O}, more than {options.Value.MaxIntentAgeSeconds} s ago");
        }

        if (intent.IssuedAt - now > TimeSpan.FromSeconds(options.Value.ClockSkewSeconds))
        {
            return Refuse(GovernanceReason.MalformedInput, $"the intent is dated {intent.IssuedAt:O}, in the future");
        }

        return await lookups.Quarantined ? Refuse(GovernanceReason.Quarantined, $"{v.Agent} is quarantined") : null;
    }

    /// <summary>
    /// The records a renewal starts from: the intent's first decision and, when renewal <paramref name="renewal"/> was
    /// decided before (a redelivery), that decision. Throws when the log cannot answer: without the record there is no
    /// verified agent to answer, so the message is redelivered, then goes to the error queue.
    /// </summary>
    public async Task<(LineageRecord? First, LineageRecord? Previous)> RenewalRecordsAsync(Guid intentId, int renewal, CancellationToken ct)
    {
        try
        {
            var first = FindAsync(DecisionRecord.DecisionKey(intentId), ct);
            var previous = FindAsync(DecisionRecord.RenewalKey(intentId, renewal), ct);
            return (await first, await previous);
        }
        catch (Exception e) when (!(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            throw new InvalidOperationException($"lineage unavailable while renewing intent {intentId}", e);
        }
    }

    /// <summary>
    /// Why renewal <paramref name="renewal"/> of <paramref name="granted"/> must be refused because its execution is
    /// over, or null. Authorize learns execution state from the decision store it already reads on this path (the
    /// domain's lineage log, shared by every replica and written only by the mesh's workers): the lease renewal n
    /// extends (renewal n − 1, or the first grant) must not have expired beyond the skew, and no halt acknowledgement
    /// or completion of the execution may be recorded. A halt ordered but not yet acknowledged is bounded by the lease.
    /// Renewal n − 1 not decided yet is a renewal still in flight that this one overtook (a re-evaluation asked for while
    /// a heartbeat's renewal was pending): the message is redelivered (<see cref="GovernanceNotFreshException"/>) up to
    /// <see cref="AuthorizeOptions.SyncMaxRedeliveries"/> times, then refused.
    /// </summary>
    public async Task<PolicyOutcome?> ExecutionEndedAsync(DecisionRecord granted, int renewal, int redeliveries, DateTimeOffset now, CancellationToken ct)
    {
        var id = granted.IntentId;
        var halted = FindAsync(DecisionRecord.HaltedKey(id), ct);
        var completed = FindAsync(DecisionRecord.CompletedKey(id), ct);
        var extended = renewal <= 1 ? Task.FromResult<LineageRecord?>(null) : FindAsync(DecisionRecord.RenewalKey(id, renewal - 1), ct);
        if (await halted is { } h)
        {
            return PolicyStep.Denied(GovernanceReason.PolicyRevoked, $"execution {id} was halted (lineage index {h.Index}); a halted execution is never renewed");
        }

        if (await completed is { } c)
        {
            return PolicyStep.Denied(GovernanceReason.PolicyRevoked, $"execution {id} completed (lineage index {c.Index}); nothing to renew");
        }

        var previous = await extended;
        if (renewal > 1 && previous is null && redeliveries < options.Value.SyncMaxRedeliveries)
        {
            throw new GovernanceNotFreshException($"renewal {renewal - 1} of {id} is not decided yet; renewal {renewal} waits for it");
        }

        var lease = renewal <= 1 ? granted.Lease : (previous is not null ? DecisionRecord.Parse(previous.Data).Lease : null);
        if (lease is null)
        {
            return PolicyStep.Denied(GovernanceReason.PolicyRevoked, $"renewal {renewal} of {id} extends no granted lease (renewal {renewal - 1} was not granted)");
        }

        var expiredAt = DateTimeOffset.FromUnixTimeSeconds(lease.ExpiresAt);
        return now > expiredAt + TimeSpan.FromSeconds(options.Value.ClockSkewSeconds)
            ? PolicyStep.Denied(GovernanceReason.LeaseExpired, $"the lease renewal {renewal} would extend expired at {expiredAt:O}; an expired execution is never renewed")
            : null;
    }

    /// <summary>A quarantine refusal for a renewal's agent, or null.</summary>
    public async Task<PolicyOutcome?> QuarantinedAsync(string agent, CancellationToken ct) =>
        await quarantine.IsQuarantinedAsync(agent, ct) ? PolicyStep.Denied(GovernanceReason.Quarantined, $"{agent} is quarantined") : null;

    private static ReplayVerdict.Refused Refuse(GovernanceReason reason, string detail) => new(PolicyStep.Denied(reason, detail));

    private Task<LineageRecord?> FindAsync(string key, CancellationToken ct) => lineage.GetByKeyAsync(key, ct).WaitAsync(LineageBound, time, ct);

    private DateTimeOffset NonceKeepUntil(IntentSubmitted intent, DateTimeOffset now) =>
        (intent.IssuedAt > now ? intent.IssuedAt : now) + TimeSpan.FromSeconds(options.Value.MaxIntentAgeSeconds + options.Value.ClockSkewSeconds);

    /// <summary>A side task whose result no longer matters: its failure is observed, never unobserved.</summary>
    private static void Observe(Task task) =>
        task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
}
