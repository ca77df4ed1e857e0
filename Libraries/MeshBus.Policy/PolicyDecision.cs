using MeshBus.Contracts;

namespace MeshBus.Policy;

/// <summary>The version of one bundle a decision used (for the grant's claims and the decision record).</summary>
/// <param name="Scope">Domain, egress or federation.</param>
/// <param name="Domain">The bundle's domain.</param>
/// <param name="Epoch">Its epoch.</param>
/// <param name="Digest">Its digest, <c>sha256:&lt;hex&gt;</c>.</param>
public sealed record PolicyVersion(PolicyScope Scope, string Domain, long Epoch, string Digest);

/// <summary>
/// The outcome of evaluating policy for one input. <see cref="Allowed"/> is true only when no deny matched, no condition
/// failed and an allow matched (in every bundle, for a combined decision).
/// </summary>
/// <param name="Allowed">Whether the intent may proceed.</param>
/// <param name="Reason"><see cref="GovernanceReason.None"/> when allowed; else <see cref="GovernanceReason.PolicyDenied"/>,
/// <see cref="GovernanceReason.PolicyError"/> or <see cref="GovernanceReason.NoMatchingRule"/> (or
/// <see cref="GovernanceReason.SyncStale"/> from <see cref="PolicyStore"/> when a required bundle is not loaded).</param>
/// <param name="MatchedRules">Ids of the rules whose selector and condition matched (allows and denies), in document
/// order; in a decision over several bundles each id is prefixed with its scope (<c>federation:no-delete</c>).</param>
/// <param name="Detail">A human-readable explanation naming the deciding rules (or the failing rule and its error).</param>
/// <param name="MaxLeaseSeconds">When allowed: the smallest <c>maxLeaseSeconds</c> obligation of the matched allows (null: none).</param>
/// <param name="Policies">The bundles evaluated, in the order given.</param>
public sealed record PolicyDecision(
    bool Allowed,
    GovernanceReason Reason,
    IReadOnlyList<string> MatchedRules,
    string Detail,
    long? MaxLeaseSeconds,
    IReadOnlyList<PolicyVersion> Policies)
{
    /// <summary>The epoch of the first bundle evaluated (the deciding domain's, by convention), or -1 when none was.</summary>
    public long Epoch => Policies.Count > 0 ? Policies[0].Epoch : -1;

    /// <summary>The digest of the first bundle evaluated, or empty when none was.</summary>
    public string Digest => Policies.Count > 0 ? Policies[0].Digest : string.Empty;

    /// <summary>Ids of the matched rules whose condition failed to evaluate (their errors are in <see cref="Detail"/>).</summary>
    public IReadOnlyList<string> FailedRules { get; init; } = [];
}
