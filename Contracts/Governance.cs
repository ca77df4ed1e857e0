namespace MeshBus.Contracts;

/// <summary>A domain published a new policy bundle version for a scope.</summary>
/// <param name="Domain">The publishing domain.</param>
/// <param name="Scope">Domain, egress or federation.</param>
/// <param name="Epoch">Monotonic version; receivers keep the highest.</param>
/// <param name="Digest">SHA-256 of the bundle's canonical form, <c>sha256:&lt;hex&gt;</c>.</param>
/// <param name="Bundle">The signed bundle document (see docs/policy.md).</param>
/// <param name="PublishedAt">When.</param>
public sealed record PolicyPublished(string Domain, PolicyScope Scope, long Epoch, string Digest, string Bundle, DateTimeOffset PublishedAt)
{
    /// <summary>
    /// The member domain that put a federation bundle on the bus (its Sync), for which <see cref="Domain"/> is the
    /// federation's name: the bridge relays a federation publication to every peer only from the member that states it.
    /// Null for a domain or egress bundle (never relayed). Not an authority: the bundle's signatures are.
    /// </summary>
    public string? Publisher { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>A domain loaded and applied a policy version (acknowledgement that governance is in sync).</summary>
/// <param name="Domain">The domain that applied it.</param>
/// <param name="Publisher">The domain that published it.</param>
/// <param name="Scope">The scope.</param>
/// <param name="Epoch">The applied epoch.</param>
/// <param name="Digest">The applied digest.</param>
/// <param name="SyncedAt">When it was applied.</param>
public sealed record PolicySynced(string Domain, string Publisher, PolicyScope Scope, long Epoch, string Digest, DateTimeOffset SyncedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;

    /// <summary>
    /// Detached JWS (<c>header..signature</c>, <c>typ: meshbus-governance+jwt</c>) over every other field, by the acknowledging domain's envelope key;
    /// verified where consumed (docs/wire-format.md, <c>GovernanceSignatures</c>).
    /// </summary>
    public string? Signature { get; init; }
}

/// <summary>A domain published a new key set signed by its root key.</summary>
/// <param name="Domain">The domain.</param>
/// <param name="Sequence">The key set's sequence (only grows).</param>
/// <param name="KeySet">The signed key set document (see docs/trust.md).</param>
/// <param name="PublishedAt">When.</param>
public sealed record KeySetPublished(string Domain, long Sequence, string KeySet, DateTimeOffset PublishedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>The home domain issued a credential to an agent after verifying its attestation.</summary>
/// <param name="Domain">The issuing (home) domain.</param>
/// <param name="Agent">The agent subject.</param>
/// <param name="CredentialId">The credential's <c>jti</c>.</param>
/// <param name="Credential">JWS compact, <c>typ: meshbus-credential+jwt</c>.</param>
/// <param name="ExpiresAt">The credential's <c>exp</c>.</param>
public sealed record CredentialIssued(string Domain, string Agent, string CredentialId, string Credential, DateTimeOffset ExpiresAt)
{
    /// <summary>The <see cref="IssueCredential.RequestId"/> this answers, when it answers one.</summary>
    public Guid? RequestId { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>Ask the home domain for a credential.</summary>
/// <param name="RequestId">Idempotency key of the request.</param>
/// <param name="Domain">The home domain asked.</param>
/// <param name="Agent">The agent subject.</param>
/// <param name="AgentPublicKey">Base64url raw Ed25519 public key the credential will bind (<c>cnf</c>).</param>
/// <param name="Attestation">The attestation document, verified by the domain's attestation verifier.</param>
/// <param name="RequestedTtlSeconds">Requested lifetime; the domain may shorten it.</param>
public sealed record IssueCredential(Guid RequestId, string Domain, string Agent, string AgentPublicKey, string Attestation, long? RequestedTtlSeconds)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>A domain is alive and states what governance it has applied. Reschedules the peers' sync watchdogs.</summary>
/// <param name="Domain">The sending domain.</param>
/// <param name="Sequence">The signed issue time in Unix milliseconds (strictly growing per replica): every Sync replica of a
/// domain numbers on the same clock, so receivers can order any replica's heartbeats (they keep the latest <c>SentAt</c>).</param>
/// <param name="SentAt">When it was sent (signed; a heartbeat dated in the future is refused).</param>
/// <param name="KeySetSequence">The sender's current key set sequence.</param>
/// <param name="DomainPolicyEpoch">The sender's applied domain-policy epoch.</param>
/// <param name="EgressPolicyEpoch">The sender's applied egress-policy epoch.</param>
/// <param name="FederationPolicyDigest">The federation policy digest the sender applied (empty when none).</param>
public sealed record DomainHeartbeat(
    string Domain,
    long Sequence,
    DateTimeOffset SentAt,
    long KeySetSequence,
    long DomainPolicyEpoch,
    long EgressPolicyEpoch,
    string FederationPolicyDigest)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;

    /// <summary>
    /// Detached JWS (<c>header..signature</c>, <c>typ: meshbus-governance+jwt</c>) over every other field, by the sending domain's envelope key;
    /// verified where consumed (docs/wire-format.md, <c>GovernanceSignatures</c>).
    /// </summary>
    public string? Signature { get; init; }
}

/// <summary>Trust in a peer, an agent or a key lapsed; every execution that depends on it is halted.</summary>
/// <param name="Domain">The domain that observed the lapse.</param>
/// <param name="Scope">Peer, agent or key.</param>
/// <param name="Subject">The peer domain, agent subject or key id.</param>
/// <param name="Reason">Why (e.g. <see cref="GovernanceReason.SyncStalled"/>).</param>
/// <param name="Detail">Explanation.</param>
/// <param name="LapsedAt">When.</param>
public sealed record TrustLapsed(string Domain, GovernanceScope Scope, string Subject, GovernanceReason Reason, string Detail, DateTimeOffset LapsedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>Trust was restored (e.g. the next good heartbeat after a stall). Halted work is never resumed silently.</summary>
/// <param name="Domain">The observing domain.</param>
/// <param name="Scope">Peer, agent or key.</param>
/// <param name="Subject">The peer domain, agent subject or key id.</param>
/// <param name="RestoredAt">When.</param>
public sealed record TrustRestored(string Domain, GovernanceScope Scope, string Subject, DateTimeOffset RestoredAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}
