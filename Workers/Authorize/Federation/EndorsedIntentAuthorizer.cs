using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Federation;

/// <summary>
/// The target's side of a cross-domain intent: decides an <see cref="IntentEndorsed"/> that arrived over the bridge.
/// The endorsement establishes the origin; then the intent is checked as the origin's agent's own (credential from the
/// origin, proof of possession), deduplicated, checked for age, quarantine and the freshness of both domains, decided
/// by this domain's policy (whose federation digest must equal the origin's), recorded and released through
/// <see cref="IntentAuthorizer"/>'s record/release path. Fail closed: every path that is not an explicit allow after a
/// durable record is a denial, a redelivery or the error queue.
/// </summary>
public sealed class EndorsedIntentAuthorizer(
    IntentAuthorizer decisions,
    IIntentVerifier verifier,
    IDecisionPolicy policy,
    IQuarantineState quarantine,
    ILineageLog lineage,
    AuthorizeKeys keys,
    TimeProvider time,
    IOptions<AuthorizeOptions> options,
    IOptions<MeshBusOptions> mesh,
    ILogger<EndorsedIntentAuthorizer> logger)
{
    private string Domain => mesh.Value.Domain;

    /// <summary>
    /// Decides an endorsed intent addressed to this domain; null for one addressed elsewhere (this domain's own outbound
    /// endorsement, which the bridge carries). Throws <see cref="UnverifiableEndorsementException"/> when the origin
    /// cannot be established and <see cref="GovernanceNotFreshException"/> while governance is not fresh yet.
    /// </summary>
    public async Task<Decision?> AuthorizeAsync(IntentEndorsed endorsed, int redeliveries, CancellationToken cancellationToken)
    {
        if (endorsed.TargetDomain != Domain)
        {
            return null;
        }

        using var activity = MeshBusServiceCollectionExtensions.ActivitySource.StartActivity("authorize endorsed intent");
        activity?.SetTag("meshbus.intent_id", endorsed.IntentId);
        var now = time.GetUtcNow();
        var (origin, intent) = Origin(endorsed, now);

        var recordLookup = lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId), cancellationToken)
            .WaitAsync(TimeSpan.FromMilliseconds(options.Value.LineageTimeoutMs), time, cancellationToken);
        var quarantineLookup = string.IsNullOrEmpty(intent.Agent) ? Task.FromResult(false) : quarantine.IsQuarantinedAsync(intent.Agent, cancellationToken);
        try
        {
            var decision = await DecideAsync(endorsed, origin, intent, redeliveries, now, recordLookup, quarantineLookup, cancellationToken);
            IntentAuthorizer.Count(decision);
            return decision;
        }
        finally
        {
            await Task.WhenAll(recordLookup, quarantineLookup).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Who endorsed: a grant-key signature of a pinned peer with an accepted key set, or nobody may be answered.</summary>
    private (EndorsementClaims Origin, IntentSubmitted Intent) Origin(IntentEndorsed endorsed, DateTimeOffset now)
    {
        if (endorsed.Intent is not { } intent || string.IsNullOrEmpty(endorsed.Endorsement))
        {
            throw new UnverifiableEndorsementException(endorsed.IntentId, GovernanceReason.MalformedInput, "the endorsement or the enclosed intent is missing");
        }

        // Thrown, the message is redelivered (hosting defaults) before the error queue: a peer's key set that was late
        // (SyncStale) can still arrive meanwhile.
        var signed = Endorsements.VerifySignature(endorsed.Endorsement, keys.Resolver, now);
        return signed.IsValid
            ? (signed.Value!, intent)
            : throw new UnverifiableEndorsementException(endorsed.IntentId, signed.Reason, signed.Detail);
    }

    private async Task<Decision> DecideAsync(
        IntentEndorsed endorsed,
        EndorsementClaims origin,
        IntentSubmitted intent,
        int redeliveries,
        DateTimeOffset now,
        Task<LineageRecord?> recordLookup,
        Task<bool> quarantineLookup,
        CancellationToken ct)
    {
        // Answers go back to the origin over the bridge, addressed to the agent it vouched for.
        var agent = string.IsNullOrEmpty(intent.Agent) ? origin.Subject : intent.Agent;
        try
        {
            // 1. The endorsement binds this intent, from the agent's home, to this domain, and is still valid.
            if (EndorsementProblem(endorsed, origin, intent, now, out var problem) is { } reason)
            {
                return decisions.Deny(intent, agent, reason, problem);
            }

            // 2. The agent: a credential its home (the endorser) issued, and proof of possession of its key.
            var (credential, failure) = verifier.VerifyCredential(intent.Credential, now);
            if (credential is null)
            {
                failure ??= new CheckFailure(GovernanceReason.CredentialInvalid, "credential did not verify");
                return decisions.Deny(intent, agent, failure.Reason, failure.Detail);
            }

            if (credential.Domain != origin.Issuer || credential.Subject != intent.Agent)
            {
                return decisions.Deny(intent, agent, GovernanceReason.CredentialInvalid,
                    $"the credential names {credential.Subject} of {credential.Domain}; the intent {intent.Agent}, endorsed by {origin.Issuer}");
            }

            var digest = verifier.VerifyIntent(intent, credential.AgentKey);
            if (digest is null)
            {
                return decisions.Deny(intent, agent, GovernanceReason.SignatureInvalid, "the intent signature does not verify with the credential's cnf key");
            }

            // 3. As for an intent of this domain: replay (record, nonce), age, quarantine; then the freshness of both.
            if (await decisions.ReplayAgeQuarantineAsync(intent, credential, digest, now, recordLookup, quarantineLookup, ct) is { } early)
            {
                return early;
            }

            if (!decisions.Fresh(Domain, intent, redeliveries, now, out var stale) || !decisions.Fresh(origin.Issuer, intent, redeliveries, now, out stale))
            {
                return await decisions.RecordAsync(intent, credential, digest, now, stale, ct);
            }

            // 4. This domain's policy; the federation policy it decided under must be the one the origin decided under.
            return await decisions.RecordAsync(intent, credential, digest, now, Decide(intent, credential, origin, now), ct);
        }
        catch (Exception e) when (e is not GovernanceNotFreshException && !(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            logger.LogError(e, "Deciding endorsed intent {IntentId} from {Origin} failed; denying", intent.IntentId, origin.Issuer);
            return decisions.Deny(intent, agent, GovernanceReason.InternalError, "the decision failed inside the mesh: " + e.GetType().Name);
        }
    }

    /// <summary>Null when the endorsement fits the message and the intent it carries; else the denial reason and detail.</summary>
    private GovernanceReason? EndorsementProblem(IntentEndorsed endorsed, EndorsementClaims origin, IntentSubmitted intent, DateTimeOffset now, out string detail)
    {
        detail = "";
        if (intent.Domain != origin.Issuer)
        {
            detail = $"the endorsement is by {origin.Issuer}; only the agent's home domain {intent.Domain} may endorse its intents";
            return GovernanceReason.SignatureInvalid;
        }

        if (endorsed.Domain != origin.Issuer || endorsed.IntentId != intent.IntentId || origin.IntentId != intent.IntentId
            || endorsed.EgressEpoch != origin.EgressEpoch || (endorsed.FederationPolicyDigest ?? "") != (origin.FederationDigest ?? ""))
        {
            detail = "the message's domain, intent id, egress epoch or federation digest differ from what its endorsement signs";
            return GovernanceReason.SignatureInvalid;
        }

        if (IntentShape.Problem(intent) is { } shape)
        {
            detail = shape;
            return GovernanceReason.MalformedInput;
        }

        if (intent.TargetDomain != Domain)
        {
            detail = $"the endorsed intent targets {intent.TargetDomain}, not {Domain}";
            return GovernanceReason.MalformedInput;
        }

        string intentDigest;
        try
        {
            intentDigest = IntentSignature.Digest(intent);
        }
        catch (FormatException e)
        {
            detail = "the enclosed intent has no canonical form: " + e.Message;
            return GovernanceReason.MalformedInput;
        }

        // The signature was established in Origin(): only the claims are checked here.
        var verified = Endorsements.CheckClaims(origin, new EndorsementVerificationOptions
        {
            Audience = Domain,
            KeyResolver = keys.Resolver,
            Now = now,
            Skew = TimeSpan.FromSeconds(options.Value.ClockSkewSeconds),
            IntentDigest = intentDigest,
        });
        if (!verified.IsValid)
        {
            detail = "endorsement: " + verified.Detail;
            return verified.Reason;
        }

        return null;
    }

    private PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, EndorsementClaims origin, DateTimeOffset now)
    {
        PolicyOutcome outcome;
        try
        {
            outcome = policy.Decide(intent, credential, now);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Policy evaluation failed for endorsed intent {IntentId}", intent.IntentId);
            return new PolicyOutcome(false, GovernanceReason.PolicyError, "policy evaluation failed: " + e.Message, [], null, policy.LoadedEpoch, "");
        }

        var mine = outcome.FederationDigest ?? "";
        var theirs = origin.FederationDigest ?? "";
        if (mine != theirs)
        {
            return outcome with
            {
                Allowed = false,
                Reason = GovernanceReason.FederationMismatch,
                Detail = $"{origin.Issuer} decided under federation policy '{theirs}', this domain under '{mine}' (policy said: {outcome.Reason} {outcome.Detail})",
            };
        }

        return outcome.Allowed && outcome.Reason != GovernanceReason.None ? outcome with { Allowed = false } : outcome;
    }
}
