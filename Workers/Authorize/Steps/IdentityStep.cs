using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger.Decisions;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Steps;

/// <summary>An intent whose sender and proof of possession verified.</summary>
/// <param name="Intent">The intent.</param>
/// <param name="Credential">The verified credential of its agent.</param>
/// <param name="Digest">The intent's canonical digest, as its signature covers it.</param>
public sealed record VerifiedIntent(IntentSubmitted Intent, VerifiedCredential Credential, string Digest)
{
    /// <summary>The verified agent subject.</summary>
    public string Agent => Credential.Subject;
}

/// <summary>The identity step's answer: verified, or refused with the verified subject the refusal may go to.</summary>
/// <param name="Verified">The verified intent, when it verified.</param>
/// <param name="Refusal">Why not, when it did not.</param>
public sealed record IdentityResult(VerifiedIntent? Verified, CheckFailure? Refusal)
{
    /// <summary>A verified intent.</summary>
    public static IdentityResult Of(VerifiedIntent verified) => new(verified, null);

    /// <summary>A refusal addressed to <paramref name="agent"/>.</summary>
    public static IdentityResult Refused(string agent, GovernanceReason reason, string detail) => new(null, new CheckFailure(reason, detail, agent));
}

/// <summary>
/// Step 1, identity: who sent the intent (a credential that verifies against the key set) and that the sender holds the
/// key it binds (the intent's signature with the credential's <c>cnf</c> key). Only a verified subject is ever answered.
/// </summary>
public sealed class IdentityStep(IIntentVerifier verifier, IOptions<MeshBusOptions> mesh)
{
    private string Domain => mesh.Value.Domain;

    /// <summary>The sequence of the key set credentials are verified with (stored in every decision record).</summary>
    public long KeySetSequence => verifier.KeySetSequence;

    /// <summary>Verifies a credential at <paramref name="now"/>: the credential, or why not (never both null).</summary>
    public (VerifiedCredential? Credential, CheckFailure? Failure) Credential(string? credential, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(credential))
        {
            return (null, new CheckFailure(GovernanceReason.MalformedInput, "credential is missing"));
        }

        var (verified, failure) = verifier.VerifyCredential(credential, now);
        return verified is null ? (null, failure ?? new CheckFailure(GovernanceReason.CredentialInvalid, "credential did not verify")) : (verified, null);
    }

    /// <summary>
    /// The sender of an intent submitted on this domain's bus: its verified credential, or a refusal for the subject of a
    /// credential whose signature verified (e.g. an expired one). Throws <see cref="UnroutableIntentException"/> when no
    /// verified subject can be answered (missing or unverifiable credential).
    /// </summary>
    public (VerifiedCredential? Credential, CheckFailure? Refusal) Sender(IntentSubmitted intent, DateTimeOffset now)
    {
        var (credential, failure) = Credential(intent.Credential, now);
        if (credential is not null)
        {
            return (credential, null);
        }

        return failure!.VerifiedSubject is not null
            ? (null, failure)
            : throw new UnroutableIntentException(intent.IntentId, failure.Reason, failure.Detail);
    }

    /// <summary>An intent of this domain's own agent: it names the credential's subject and domain, is well formed, and its signature verifies.</summary>
    public IdentityResult Local(IntentSubmitted intent, VerifiedCredential credential)
    {
        var agent = credential.Subject;
        if (credential.Subject != intent.Agent || credential.Domain != intent.Domain)
        {
            return IdentityResult.Refused(agent, GovernanceReason.CredentialInvalid,
                $"the credential names {credential.Subject} of {credential.Domain}, the intent {intent.Agent} of {intent.Domain}");
        }

        if (credential.Domain != Domain)
        {
            // A peer's agent reaches this domain only endorsed by its home (IntentEndorsed), never around its egress policy.
            return IdentityResult.Refused(agent, GovernanceReason.CredentialInvalid,
                $"{agent} is an agent of {credential.Domain}: its intents are decided here only with its home domain's endorsement");
        }

        return IntentShape.Problem(intent) is { } problem
            ? IdentityResult.Refused(agent, GovernanceReason.MalformedInput, problem)
            : Possession(intent, credential, agent);
    }

    /// <summary>An endorsed intent: the credential was issued by the endorsing home domain to the intent's agent, and the signature verifies.</summary>
    public IdentityResult Endorsed(IntentSubmitted intent, VerifiedCredential credential, string home, string agent)
    {
        if (credential.Domain != home || credential.Subject != intent.Agent)
        {
            return IdentityResult.Refused(agent, GovernanceReason.CredentialInvalid,
                $"the credential names {credential.Subject} of {credential.Domain}; the intent {intent.Agent}, endorsed by {home}");
        }

        return Possession(intent, credential, agent);
    }

    /// <summary>A renewal: the stored intent still verifies, with the same digest, under a credential that verifies now.</summary>
    public IdentityResult Renewal(DecisionRecord granted, DateTimeOffset now)
    {
        var (credential, failure) = Credential(granted.Intent.Credential, now);
        if (credential is null)
        {
            return IdentityResult.Refused(granted.Agent, failure!.Reason, failure.Detail);
        }

        return verifier.VerifyIntent(granted.Intent, credential.AgentKey) == granted.IntentDigest
            ? IdentityResult.Of(new VerifiedIntent(granted.Intent, credential, granted.IntentDigest))
            : IdentityResult.Refused(granted.Agent, GovernanceReason.SignatureInvalid, "the stored intent no longer verifies");
    }

    private IdentityResult Possession(IntentSubmitted intent, VerifiedCredential credential, string agent) =>
        verifier.VerifyIntent(intent, credential.AgentKey) is { } digest
            ? IdentityResult.Of(new VerifiedIntent(intent, credential, digest))
            : IdentityResult.Refused(agent, GovernanceReason.SignatureInvalid, "the intent signature does not verify with the credential's cnf key");
}
