namespace MeshBus.Contracts;

/// <summary>
/// Why a decision denied, a lease was not renewed, trust lapsed or an execution was halted.
/// The numeric values are part of the wire format: never reorder, only append.
/// </summary>
public enum GovernanceReason
{
    /// <summary>No reason: used only where a message has no negative outcome.</summary>
    None = 0,

    /// <summary>A matching deny rule in the domain, egress or federation policy.</summary>
    PolicyDenied = 1,

    /// <summary>No allow rule matched the intent (default deny).</summary>
    NoMatchingRule = 2,

    /// <summary>The decider's view of a domain involved is not fresh (heartbeat too old, key set or policy epoch not applied) past the redelivery bound.</summary>
    SyncStale = 3,

    /// <summary>The origin's federation-policy digest differs from the decider's.</summary>
    FederationMismatch = 4,

    /// <summary>A domain named in the intent or a message is not in the trust config.</summary>
    UnknownDomain = 5,

    /// <summary>A signature (intent, credential, endorsement, envelope, key set) did not verify.</summary>
    SignatureInvalid = 6,

    /// <summary>The agent credential has expired (or is not yet valid).</summary>
    CredentialExpired = 7,

    /// <summary>The intent id was seen before with another digest, or its nonce was reused.</summary>
    ReplayDetected = 8,

    /// <summary>The decision could not be recorded durably in the lineage log within its bound: no grant.</summary>
    LineageUnavailable = 9,

    /// <summary>The agent is quarantined (it did not acknowledge a halt in time, or an operator quarantined it).</summary>
    Quarantined = 10,

    /// <summary>A newer policy epoch no longer allows a running execution.</summary>
    PolicyRevoked = 11,

    /// <summary>Governance synchronization with a peer stalled past the watchdog deadline.</summary>
    SyncStalled = 12,

    /// <summary>A peer's log produced two validly signed checkpoints that cannot be consistent (a fork).</summary>
    LogInconsistent = 13,

    /// <summary>The grant's lease expired without a renewal.</summary>
    LeaseExpired = 14,

    /// <summary>A key the execution depends on was revoked.</summary>
    KeyRevoked = 15,

    /// <summary>The agent stopped sending execution heartbeats.</summary>
    HeartbeatLost = 16,

    /// <summary>An operator asked for the halt.</summary>
    OperatorHalt = 17,

    /// <summary>The input was malformed, oversized, or of an unknown shape or version.</summary>
    MalformedInput = 18,

    /// <summary>A policy condition failed to evaluate (an error is never an allow).</summary>
    PolicyError = 19,

    /// <summary>The agent did not acknowledge a halt within the deadline.</summary>
    HaltNotAcknowledged = 20,

    /// <summary>The credential is not valid for another reason than expiry (wrong type, issuer, key, claims).</summary>
    CredentialInvalid = 21,

    /// <summary>An unexpected failure inside the mesh; the outcome is deny.</summary>
    InternalError = 22,

    /// <summary>A peer signed governance statements that contradict each other (a heartbeat announcing an older policy epoch than one it acknowledged, a key set with a lower sequence than one it published).</summary>
    GovernanceInconsistent = 23,
}

/// <summary>What a halt or a trust lapse applies to.</summary>
public enum GovernanceScope
{
    /// <summary>One execution, named by its intent id.</summary>
    Execution = 0,

    /// <summary>Every execution that involves a peer domain.</summary>
    Peer = 1,

    /// <summary>Every execution of one agent (its subject, not one credential).</summary>
    Agent = 2,

    /// <summary>Every execution whose grant, credential or key set relies on one key id.</summary>
    Key = 3,
}

/// <summary>The scope a policy bundle governs.</summary>
public enum PolicyScope
{
    /// <summary>The domain's own policy, for intents that target it.</summary>
    Domain = 0,

    /// <summary>The domain's egress policy, for its agents acting elsewhere.</summary>
    Egress = 1,

    /// <summary>The shared federation policy, signed by every member's root.</summary>
    Federation = 2,
}

/// <summary>Why an intent is evaluated again after its first decision.</summary>
public enum EvaluationKind
{
    /// <summary>A lease renewal asked for by an execution heartbeat.</summary>
    Renewal = 0,

    /// <summary>A new policy epoch or key set re-evaluates a running execution.</summary>
    Reevaluation = 1,
}
