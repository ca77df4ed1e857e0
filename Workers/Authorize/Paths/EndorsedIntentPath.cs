using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Steps;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Paths;

/// <summary>
/// The target's side of a cross-domain intent: an <see cref="IntentEndorsed"/> that arrived over the bridge. The
/// endorsement establishes the origin and must bind this intent to this domain; then the same steps as a local intent:
/// identity (a credential from the origin, proof of possession), replay, the freshness of both domains, this domain's
/// policy (whose federation digest must equal the origin's), record then release. Fail closed: every path that is not
/// an explicit allow after a durable record is a denial, a redelivery or the error queue.
/// </summary>
public sealed class EndorsedIntentPath(
    IdentityStep identity,
    ReplayStep replay,
    FreshnessStep freshness,
    PolicyStep policy,
    RecordThenReleaseStep release,
    AuthorizeKeys keys,
    TimeProvider time,
    IOptions<AuthorizeOptions> options,
    IOptions<MeshBusOptions> mesh,
    ILogger<EndorsedIntentPath> logger)
{
    private string Domain => mesh.Value.Domain;

    /// <summary>
    /// Decides an endorsed intent addressed to this domain. Throws <see cref="UnverifiableEndorsementException"/> when the
    /// origin cannot be established and <see cref="GovernanceNotFreshException"/> while governance is not fresh yet.
    /// </summary>
    public async Task<Decision> AuthorizeAsync(IntentEndorsed endorsed, int redeliveries, CancellationToken cancellationToken)
    {
        using var activity = MeshBusServiceCollectionExtensions.ActivitySource.StartActivity("authorize endorsed intent");
        activity?.SetTag("meshbus.intent_id", endorsed.IntentId);
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        var now = time.GetUtcNow();
        var (origin, intent) = Origin(endorsed, now);
        var lookups = replay.Begin(intent, cancellationToken);
        try
        {
            return DecisionMetrics.Count(await DecideAsync(endorsed, origin, intent, redeliveries, now, lookups, cancellationToken), startedAt);
        }
        finally
        {
            await lookups.SettleAsync();
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
        IntentEndorsed endorsed, EndorsementClaims origin, IntentSubmitted intent, int redeliveries, DateTimeOffset now, ReplayLookups lookups, CancellationToken ct)
    {
        // Answers go back to the origin over the bridge, addressed to the agent it vouched for.
        var agent = string.IsNullOrEmpty(intent.Agent) ? origin.Subject : intent.Agent;
        try
        {
            // The endorsement binds this intent, from the agent's home, to this domain, and is still valid.
            if (EndorsementProblem(endorsed, origin, intent, now, out var problem) is { } reason)
            {
                return release.Deny(intent, agent, reason, problem);
            }

            // 1. Identity: a credential its home (the endorser) issued, and proof of possession of its key.
            var (credential, failure) = identity.Credential(intent.Credential, now);
            if (credential is null)
            {
                return release.Deny(intent, agent, failure!.Reason, failure.Detail);
            }

            var verified = identity.Endorsed(intent, credential, origin.Issuer, agent);
            if (verified.Verified is not { } v)
            {
                return release.Deny(intent, agent, verified.Refusal!.Reason, verified.Refusal.Detail);
            }

            // 2. As for an intent of this domain: replay (record, nonce), age, quarantine.
            if (await replay.CheckAsync(v, lookups, now, ct) is { } verdict)
            {
                return await release.ReleaseAsync(v, verdict, now, ct);
            }

            // 3–5. The freshness of both domains, this domain's policy under the origin's federation policy, record then release.
            var outcome = await freshness.CheckAsync(Domain, origin.Issuer, intent.IssuedAt, redeliveries, now, ct)
                ?? policy.Endorsed(v, origin.Issuer, origin.FederationDigest, now);
            return await release.RecordAsync(v, now, outcome, ct);
        }
        catch (Exception e) when (e is not GovernanceNotFreshException && !(e is OperationCanceledException && ct.IsCancellationRequested))
        {
            logger.LogError(e, "Deciding endorsed intent {IntentId} from {Origin} failed; denying", intent.IntentId, origin.Issuer);
            return release.Deny(intent, agent, GovernanceReason.InternalError, "the decision failed inside the mesh: " + e.GetType().Name);
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
}
