using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Ledger.Decisions;
using MeshBus.Policy;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>A credential that verified against the domain's key set.</summary>
/// <param name="Subject">The agent subject (<c>sub</c>).</param>
/// <param name="Domain">The issuing home domain (<c>iss</c>).</param>
/// <param name="AgentKey">The bound agent key (<c>cnf</c>), base64url raw Ed25519.</param>
/// <param name="CredentialId">The credential's <c>jti</c>.</param>
/// <param name="Claims">Attested claims handed to policy (image digest, owner, groups, ...).</param>
public sealed record VerifiedCredential(
    string Subject,
    string Domain,
    string AgentKey,
    string CredentialId,
    IReadOnlyDictionary<string, JsonElement> Claims);

/// <summary>A failed check, with the subject it may be routed to when the credential's signature itself verified.</summary>
/// <param name="Reason">The denial reason.</param>
/// <param name="Detail">What failed.</param>
/// <param name="VerifiedSubject">The subject of a credential whose signature verified (e.g. an expired one), else null.</param>
public sealed record CheckFailure(GovernanceReason Reason, string Detail, string? VerifiedSubject = null);

/// <summary>
/// Identity checks of one intent on the trust library: the credential against the domain's key resolver, and the
/// intent's proof-of-possession signature with the credential's <c>cnf</c> key.
/// </summary>
public interface IIntentVerifier
{
    /// <summary>The sequence of the key set loaded for verification.</summary>
    long KeySetSequence { get; }

    /// <summary>Verifies the credential at <paramref name="now"/>; exactly one of the results is non-null.</summary>
    (VerifiedCredential? Credential, CheckFailure? Failure) VerifyCredential(string credential, DateTimeOffset now);

    /// <summary>The intent's canonical digest (<c>sha256:&lt;hex&gt;</c>) when its signature verifies with <paramref name="agentKey"/>; null otherwise.</summary>
    string? VerifyIntent(IntentSubmitted intent, string agentKey);
}

/// <summary>The policy's answer for one intent.</summary>
/// <param name="Allowed">Allow (only when an allow rule matched and no deny rule did).</param>
/// <param name="Reason">The denial reason (None when allowed).</param>
/// <param name="Detail">Explanation.</param>
/// <param name="MatchedRules">Rule ids that matched.</param>
/// <param name="MaxLeaseSeconds">The lease obligation of the matching allow rules, if any.</param>
/// <param name="Epoch">The domain policy epoch decided with.</param>
/// <param name="Digest">The domain policy digest decided with.</param>
/// <param name="FederationEpoch">The federation policy epoch, when one is configured.</param>
/// <param name="FederationDigest">The federation policy digest, when one is configured.</param>
public sealed record PolicyOutcome(
    bool Allowed,
    GovernanceReason Reason,
    string Detail,
    IReadOnlyList<string> MatchedRules,
    long? MaxLeaseSeconds,
    long Epoch,
    string Digest,
    long? FederationEpoch = null,
    string? FederationDigest = null)
{
    /// <summary>The federation whose policy was applied, when one was.</summary>
    public string? FederationName { get; init; }
}

/// <summary>The policy library's decision for an intent targeting this domain (deny overrides across domain + federation).</summary>
public interface IDecisionPolicy
{
    /// <summary>The loaded domain policy epoch (-1 when none is loaded).</summary>
    long LoadedEpoch { get; }

    /// <summary>The digest of the loaded federation policy (empty when none is loaded or none is configured).</summary>
    string LoadedFederationDigest => "";

    /// <summary>Decides; an evaluation error must come back as a <see cref="GovernanceReason.PolicyError"/> denial or throw.</summary>
    PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now);
}

/// <summary>
/// The origin's egress decision for an intent of one of its agents that targets another domain (deny overrides across
/// the egress policy and the federation policy when one is loaded). No egress policy loaded is a denial.
/// </summary>
public interface IEgressPolicy
{
    /// <summary>The loaded egress policy epoch (-1 when none is loaded).</summary>
    long LoadedEpoch { get; }

    /// <summary>Decides; an evaluation error must come back as a <see cref="GovernanceReason.PolicyError"/> denial or throw.</summary>
    PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now);
}

/// <summary>Signs grants with the domain's grant key; deterministic (the same claims give the same bytes).</summary>
public interface IGrantSigner
{
    /// <summary>The grant JWS for <paramref name="claims"/> at the decision's lineage index.</summary>
    string Sign(LeaseClaims claims, long lineageIndex);
}

/// <summary>
/// Where published policy bundles are installed (every replica loads every version): the domain, egress and federation
/// policies the decision and egress policies read.
/// </summary>
public interface IPolicyBundles
{
    /// <summary>The federation this domain belongs to, if any (its bundles are the only federation bundles taken).</summary>
    string? FederationName { get; }

    /// <summary>Verifies and installs a signed bundle of <paramref name="scope"/>; throws when it is refused.</summary>
    PolicyLoadResult Load(string bundleJson, PolicyScope scope);
}
