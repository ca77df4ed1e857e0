namespace MeshBus.Contracts;

/// <summary>Phase 5: the agent began the governed action under a verified grant.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The agent's home domain.</param>
/// <param name="Agent">The agent.</param>
/// <param name="GrantId">The grant's <c>jti</c>.</param>
/// <param name="StartedAt">When the work started.</param>
public sealed record ExecutionStarted(Guid IntentId, string Domain, string Agent, string GrantId, DateTimeOffset StartedAt)
{
    /// <summary>
    /// Base64url Ed25519 signature of the agent key (the credential's <c>cnf</c>, recorded with the grant) over the
    /// report's canonical bytes (docs/wire-format.md, "Signing execution reports"). A report without a valid one is
    /// rejected at the agent ingress and changes nothing.
    /// </summary>
    public string? Signature { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>Phase 6: the agent is still working; renews the lease while governance allows.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The agent's home domain.</param>
/// <param name="Agent">The agent.</param>
/// <param name="Sequence">Increases by one per heartbeat of this execution.</param>
/// <param name="SentAt">When it was sent.</param>
public sealed record ExecutionHeartbeat(Guid IntentId, string Domain, string Agent, long Sequence, DateTimeOffset SentAt)
{
    /// <summary>
    /// Base64url Ed25519 signature of the agent key (the credential's <c>cnf</c>, recorded with the grant) over the
    /// report's canonical bytes (docs/wire-format.md, "Signing execution reports"). A report without a valid one is
    /// rejected at the agent ingress and changes nothing.
    /// </summary>
    public string? Signature { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>The agent finished the work.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The agent's home domain.</param>
/// <param name="Agent">The agent.</param>
/// <param name="CompletedAt">When it finished.</param>
/// <param name="Outcome">A short result description chosen by the agent.</param>
public sealed record ExecutionCompleted(Guid IntentId, string Domain, string Agent, DateTimeOffset CompletedAt, string? Outcome)
{
    /// <summary>
    /// Base64url Ed25519 signature of the agent key (the credential's <c>cnf</c>, recorded with the grant) over the
    /// report's canonical bytes (docs/wire-format.md, "Signing execution reports"). A report without a valid one is
    /// rejected at the agent ingress and changes nothing.
    /// </summary>
    public string? Signature { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>The execution stopped because of a halt, a lapse or lease expiry. A halt counts as done only when this is in lineage.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The domain of the reporter (the agent's home domain when the agent acknowledges).</param>
/// <param name="Agent">The agent.</param>
/// <param name="Reason">Why it stopped.</param>
/// <param name="Detail">Explanation.</param>
/// <param name="HaltedAt">When the work stopped.</param>
/// <param name="HaltId">The <see cref="HaltExecution.HaltId"/> acknowledged, when the halt came from a command.</param>
public sealed record ExecutionHalted(
    Guid IntentId,
    string Domain,
    string Agent,
    GovernanceReason Reason,
    string Detail,
    DateTimeOffset HaltedAt,
    Guid? HaltId)
{
    /// <summary>
    /// Base64url Ed25519 signature of the agent key (the credential's <c>cnf</c>, recorded with the grant) over the
    /// report's canonical bytes (docs/wire-format.md, "Signing execution reports"). A report without a valid one is
    /// rejected at the agent ingress and changes nothing.
    /// </summary>
    public string? Signature { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>
/// Stop one execution, or every execution in a scope (peer, agent, key). Routed to the agents concerned and recorded
/// by the lifecycle sagas. The lease makes the stop certain even when this command is lost.
/// </summary>
/// <param name="HaltId">Unique id of this halt (idempotency key).</param>
/// <param name="Domain">The domain that orders the halt.</param>
/// <param name="Scope">What is halted.</param>
/// <param name="Subject">The intent id, peer domain, agent subject or key id, by scope.</param>
/// <param name="Reason">Why.</param>
/// <param name="Detail">Explanation.</param>
/// <param name="RequestedAt">When the halt was ordered.</param>
public sealed record HaltExecution(
    Guid HaltId,
    string Domain,
    GovernanceScope Scope,
    string Subject,
    GovernanceReason Reason,
    string Detail,
    DateTimeOffset RequestedAt)
{
    /// <summary>The intent id when <see cref="Scope"/> is <see cref="GovernanceScope.Execution"/>.</summary>
    public Guid? IntentId { get; init; }

    /// <summary>
    /// JWS compact, <c>typ: meshbus-halt+jwt</c>, signed by the ordering domain's grant key over the halt's fields
    /// (docs/wire-format.md, "Verifying denials and halts"). Set on the copy sent to an agent's queue; an agent ignores a
    /// halt whose token does not verify.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>An agent did not acknowledge a halt in time (or an operator decided): refused everywhere until released.</summary>
/// <param name="Domain">The domain that quarantines.</param>
/// <param name="Agent">The agent subject (all its credentials).</param>
/// <param name="Reason">Why.</param>
/// <param name="Detail">Explanation.</param>
/// <param name="IntentId">The execution that triggered it, if any.</param>
/// <param name="QuarantinedAt">When.</param>
public sealed record AgentQuarantined(string Domain, string Agent, GovernanceReason Reason, string Detail, Guid? IntentId, DateTimeOffset QuarantinedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;

    /// <summary>
    /// Detached JWS (<c>header..signature</c>, <c>typ: meshbus-governance+jwt</c>) over every other field, by the quarantining domain's envelope key;
    /// verified where consumed (docs/wire-format.md, <c>GovernanceSignatures</c>).
    /// </summary>
    public string? Signature { get; init; }
}

/// <summary>An operator released a quarantined agent.</summary>
/// <param name="Domain">The domain that releases.</param>
/// <param name="Agent">The agent subject.</param>
/// <param name="ReleasedBy">Who released it.</param>
/// <param name="ReleasedAt">When.</param>
public sealed record AgentReleased(string Domain, string Agent, string ReleasedBy, DateTimeOffset ReleasedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;

    /// <summary>The <see cref="AgentQuarantined.QuarantinedAt"/> of the quarantine this release lifts (a release lifts only the quarantine it names).</summary>
    public DateTimeOffset? QuarantinedAt { get; init; }

    /// <summary>
    /// Detached JWS (<c>header..signature</c>, <c>typ: meshbus-governance+jwt</c>) over every other field, by the releasing
    /// domain's root key (an operator act: <c>meshbus agent release</c>); verified where consumed (docs/wire-format.md,
    /// <c>GovernanceSignatures</c>).
    /// </summary>
    public string? Signature { get; init; }
}
