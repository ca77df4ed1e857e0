using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Paths;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Steps;

/// <summary>
/// Step 5, record then release (DESIGN.md fail-closed rule 2): the decision is appended to the lineage log and only the
/// acknowledged record is released, as a grant, a renewal, an endorsement or a denial, every byte of it rebuilt from the
/// record so a redelivery releases the identical answer. It is also the one place answers are made: a denial that
/// cannot be recorded (identity refused, lineage down) is built here too.
/// </summary>
public sealed class RecordThenReleaseStep(
    ILineageLog lineage,
    IGrantSigner signer,
    IIntentVerifier verifier,
    EgressEndorser endorser,
    TimeProvider time,
    IOptions<AuthorizeOptions> options,
    IOptions<MeshBusOptions> mesh,
    ILogger<RecordThenReleaseStep> logger)
{
    private string Domain => mesh.Value.Domain;

    /// <summary>Records the first decision on a verified intent (kind <c>egress</c> when it targets another domain), then releases it.</summary>
    public Task<Decision> RecordAsync(VerifiedIntent v, DateTimeOffset now, PolicyOutcome outcome, CancellationToken ct)
    {
        var (intent, credential, digest) = (v.Intent, v.Credential, v.Digest);
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
            egress ? DecisionRecord.EgressKind : DecisionRecord.DecisionKind, intent.IntentId, 0, Domain, credential.Subject, intent.TargetDomain, digest, outcome.Allowed,
            outcome.Allowed ? GovernanceReason.None : outcome.Reason, outcome.Detail, outcome.MatchedRules, outcome.Epoch, outcome.Digest, outcome.FederationEpoch,
            outcome.FederationDigest, verifier.KeySetSequence, now.ToUnixTimeMilliseconds(), lease, intent)
        {
            Endorsement = outcome.Allowed && egress ? endorser.Terms(now) : null,
        };
        return AppendThenReleaseAsync(record, credential.Subject, digest, ct);
    }

    /// <summary>Records renewal <paramref name="renewal"/> of a granted intent, then releases it.</summary>
    public Task<Decision> RecordRenewalAsync(DecisionRecord granted, int renewal, DateTimeOffset now, PolicyOutcome outcome, CancellationToken ct)
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
            Kind = DecisionRecord.RenewalKind,
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
        return AppendThenReleaseAsync(record, granted.Agent, granted.IntentDigest, ct);
    }

    /// <summary>What the replay step's verdict decides for a verified intent.</summary>
    public Task<Decision> ReleaseAsync(VerifiedIntent v, ReplayVerdict verdict, DateTimeOffset now, CancellationToken ct) => verdict switch
    {
        ReplayVerdict.AlreadyDecided d => Task.FromResult(Replay(v.Intent, v.Agent, v.Digest, d.Existing)),
        ReplayVerdict.LineageUnavailable u => Task.FromResult(LineageDown(v.Intent, v.Agent, u.Error)),
        ReplayVerdict.Refused r => RecordAsync(v, now, r.Outcome, ct),
        _ => throw new ArgumentOutOfRangeException(nameof(verdict), verdict, "unknown replay verdict"),
    };

    /// <summary>The decision stored for the intent's id: released again when it is this intent's, a replay otherwise.</summary>
    public Decision Replay(IntentSubmitted intent, string agent, string digest, LineageRecord existing)
    {
        var stored = DecisionRecord.Parse(existing.Data);
        if (stored.IntentDigest != digest || stored.Agent != agent)
        {
            return Deny(intent, agent, GovernanceReason.ReplayDetected,
                $"intent id {intent.IntentId} was decided before (lineage index {existing.Index}) for another intent digest; this one is not recorded");
        }

        return Rebuild(stored, existing.Index);
    }

    /// <summary>The answer of a stored record at its lineage index: every byte comes from the record.</summary>
    public Decision Rebuild(DecisionRecord record, long index)
    {
        // Recorded: it may be published for the saga and lineage, with the verified intent of a first decision.
        var intent = record.Renewal == 0 ? record.Intent : null;
        if (record.Kind == DecisionRecord.EgressKind && record.Allowed)
        {
            return endorser.Release(record, index) with { Recorded = true, Intent = intent };
        }

        if (!record.Allowed || record.Lease is null)
        {
            return new DenialDecision(record.Agent, new GrantDenied(record.IntentId, Domain, record.Agent, record.Reason, record.Detail, index, record.MatchedRules))
            {
                Recorded = true,
                Intent = intent,
            };
        }

        var grant = signer.Sign(record.Lease, index);
        var expires = DateTimeOffset.FromUnixTimeSeconds(record.Lease.ExpiresAt);
        return record.Renewal == 0
            ? new GrantDecision(record.Agent, new GrantIssued(record.IntentId, Domain, record.Agent, grant, index, expires)) { Recorded = true, Intent = intent }
            : new RenewalDecision(record.Agent, new GrantRenewed(record.IntentId, Domain, record.Agent, grant, index, expires, record.Renewal)) { Recorded = true };
    }

    /// <summary>A denial that is not recorded (nothing verified to record, or the log is down).</summary>
    public Decision Deny(IntentSubmitted intent, string agent, GovernanceReason reason, string detail) =>
        new DenialDecision(agent, new GrantDenied(intent.IntentId, Domain, agent, reason, detail, null, []));

    /// <summary>The unrecorded <see cref="GovernanceReason.LineageUnavailable"/> denial: no record, no grant.</summary>
    public Decision LineageDown(IntentSubmitted intent, string agent, Exception e)
    {
        logger.LogWarning(e, "Lineage unavailable deciding intent {IntentId}", intent.IntentId);
        var detail = e is TimeoutException
            ? $"the lineage log did not acknowledge the decision within {options.Value.LineageTimeoutMs} ms; no grant was released and this denial is not " +
              "recorded (an append still under way may record the decision later: resubmitting the same intent then returns the recorded decision)"
            : $"the decision could not be recorded in the lineage log ({e.GetType().Name}: {e.Message}); no grant, and this denial is not recorded either";
        return Deny(intent, agent, GovernanceReason.LineageUnavailable, detail);
    }

    private async Task<Decision> AppendThenReleaseAsync(DecisionRecord record, string agent, string digest, CancellationToken ct)
    {
        AppendResult appended;
        try
        {
            // The only durable step of the critical path: acknowledged after commit, group-committed with its neighbours.
            appended = await lineage.AppendAsync(new LineageEntry(record.Key, record.EntryType, record.ToBytes()), ct)
                .WaitAsync(TimeSpan.FromMilliseconds(options.Value.LineageTimeoutMs), time, ct);
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
}
