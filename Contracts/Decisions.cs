namespace MeshBus.Contracts;

/// <summary>Phase 3: the deciding domain allowed the intent; routed to the requesting agent's queue only.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The deciding domain (the grant's issuer).</param>
/// <param name="Agent">The agent the grant is bound to.</param>
/// <param name="Grant">JWS compact, <c>typ: meshbus-grant+jwt</c>, <c>alg: EdDSA</c>; see docs/grants.md.</param>
/// <param name="LineageIndex">Index of the decision record in the decider's lineage log.</param>
/// <param name="ExpiresAt">The lease's <c>exp</c>.</param>
public sealed record GrantIssued(
    Guid IntentId,
    string Domain,
    string Agent,
    string Grant,
    long LineageIndex,
    DateTimeOffset ExpiresAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>Phase 6: a lease was renewed (decided and recorded like a grant).</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The deciding domain.</param>
/// <param name="Agent">The agent.</param>
/// <param name="Grant">The renewed grant (a new JWS with a later <c>exp</c>).</param>
/// <param name="LineageIndex">Index of the renewal record in the decider's lineage log.</param>
/// <param name="ExpiresAt">The new lease expiry.</param>
/// <param name="Renewal">The renewal counter (1 for the first renewal).</param>
public sealed record GrantRenewed(
    Guid IntentId,
    string Domain,
    string Agent,
    string Grant,
    long LineageIndex,
    DateTimeOffset ExpiresAt,
    int Renewal)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>The intent (or a renewal) was denied, with a reason.</summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Domain">The deciding domain.</param>
/// <param name="Agent">The agent.</param>
/// <param name="Reason">Why.</param>
/// <param name="Detail">A human-readable explanation (rule ids, the failing check).</param>
/// <param name="LineageIndex">Index of the denial record, when it was recorded.</param>
/// <param name="MatchedRules">Rule ids that matched, when policy was evaluated.</param>
public sealed record GrantDenied(
    Guid IntentId,
    string Domain,
    string Agent,
    GovernanceReason Reason,
    string Detail,
    long? LineageIndex,
    IReadOnlyList<string> MatchedRules)
{
    /// <summary>
    /// JWS compact, <c>typ: meshbus-denial+jwt</c>, signed by the deciding domain's grant key over the denial's fields
    /// (docs/wire-format.md, "Verifying denials and halts"). An agent ignores a denial whose token does not verify.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}
