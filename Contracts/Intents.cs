namespace MeshBus.Contracts;

/// <summary>
/// Phase 1: an agent asks to act. Published by the agent on its home domain's bus.
/// The signed content is the RFC 8785 canonical JSON of the intent fields (see docs/wire-format.md);
/// <see cref="Signature"/> is the agent key's Ed25519 signature over it (proof of possession of the key named in the
/// credential's <c>cnf</c>).
/// </summary>
/// <param name="IntentId">Unique id chosen by the agent; the decision's idempotency key.</param>
/// <param name="Domain">The agent's home domain (the producer of the message).</param>
/// <param name="Agent">The agent's subject, e.g. <c>acme.example/prod/agents/deployer</c>.</param>
/// <param name="TargetDomain">The domain that owns the resource.</param>
/// <param name="Action">What the agent wants to do, e.g. <c>deploy</c>.</param>
/// <param name="Resource">What it acts on, e.g. <c>k8s://cluster-a/ns/web</c>.</param>
/// <param name="Parameters">Parameters as a JSON object (numbers must be integers within ±2^53, or strings).</param>
/// <param name="MaxDurationSeconds">The longest the agent will run under a grant.</param>
/// <param name="Nonce">A fresh random value; with the id it prevents replay.</param>
/// <param name="IssuedAt">When the agent signed the intent.</param>
/// <param name="Credential">The agent credential (JWS, <c>typ: meshbus-credential+jwt</c>).</param>
/// <param name="Signature">Base64url Ed25519 signature over the canonical intent.</param>
public sealed record IntentSubmitted(
    Guid IntentId,
    string Domain,
    string Agent,
    string TargetDomain,
    string Action,
    string Resource,
    System.Text.Json.JsonElement? Parameters,
    long MaxDurationSeconds,
    string Nonce,
    DateTimeOffset IssuedAt,
    string Credential,
    string Signature)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>
/// Cross-domain: the origin domain's Authorize allowed the intent under its egress policy and endorses it to the target.
/// </summary>
/// <param name="IntentId">The intent id.</param>
/// <param name="Domain">The origin (endorsing) domain.</param>
/// <param name="TargetDomain">The domain that will decide.</param>
/// <param name="Intent">The agent's signed intent, unchanged.</param>
/// <param name="Endorsement">JWS by the origin's grant key binding the intent digest, the egress epoch and the federation digest.</param>
/// <param name="EgressEpoch">The origin's egress policy epoch used.</param>
/// <param name="FederationPolicyDigest">The federation policy digest the origin applied.</param>
public sealed record IntentEndorsed(
    Guid IntentId,
    string Domain,
    string TargetDomain,
    IntentSubmitted Intent,
    string Endorsement,
    long EgressEpoch,
    string FederationPolicyDigest)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>Request (re-)evaluation of a granted intent: a lease renewal or a re-evaluation after a policy change.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The domain asking (the deciding domain's Enforce).</param>
/// <param name="Kind">Renewal or re-evaluation.</param>
/// <param name="Renewal">The renewal counter the new lease will carry (1 for the first renewal).</param>
/// <param name="RequestedAt">When it was asked.</param>
public sealed record EvaluateIntent(
    Guid IntentId,
    string Domain,
    EvaluationKind Kind,
    int Renewal,
    DateTimeOffset RequestedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}
