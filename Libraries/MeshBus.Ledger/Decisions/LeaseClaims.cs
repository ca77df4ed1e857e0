using MeshBus.Contracts;
using MeshBus.Trust;

namespace MeshBus.Ledger.Decisions;

/// <summary>
/// The claims of a grant or renewal as stored in the decision record; with the record's lineage index they rebuild
/// the byte-identical grant.
/// </summary>
/// <param name="GrantId">The grant's <c>jti</c>: the intent id, with <c>:n</c> for renewal n.</param>
/// <param name="Issuer">The deciding domain (<c>iss</c>).</param>
/// <param name="Subject">The agent (<c>sub</c>).</param>
/// <param name="Audience">The target resource domain (<c>aud</c>).</param>
/// <param name="IntentId">The intent.</param>
/// <param name="IntentDigest">The intent's canonical digest.</param>
/// <param name="Action">The granted action.</param>
/// <param name="Resource">The resource it applies to.</param>
/// <param name="AgentKey">The agent's key (<c>cnf</c>), base64url.</param>
/// <param name="IssuedAt">Unix seconds.</param>
/// <param name="ExpiresAt">Unix seconds.</param>
/// <param name="PolicyEpoch">The domain policy epoch.</param>
/// <param name="PolicyDigest">The domain policy digest.</param>
/// <param name="FederationEpoch">The federation policy epoch, if any.</param>
/// <param name="FederationDigest">The federation policy digest, if any.</param>
/// <param name="Renewal">0 for the first grant, n for renewal n.</param>
public sealed record LeaseClaims(
    string GrantId,
    string Issuer,
    string Subject,
    string Audience,
    Guid IntentId,
    string IntentDigest,
    string Action,
    string Resource,
    string AgentKey,
    long IssuedAt,
    long ExpiresAt,
    long PolicyEpoch,
    string PolicyDigest,
    long? FederationEpoch,
    string? FederationDigest,
    int Renewal)
{
    /// <summary>The federation whose policy version is <see cref="FederationEpoch"/> (absent in records written before it was stored).</summary>
    public string? FederationName { get; init; }

    /// <summary>
    /// The grant's claims at the decision's lineage index: signed with the domain's grant key (Ed25519 is deterministic),
    /// they give the byte-identical grant that was released, which is how a redelivery and an evidence export rebuild it.
    /// </summary>
    /// <param name="lineageIndex">The index of the decision record that holds these claims.</param>
    public GrantClaims ToGrantClaims(long lineageIndex)
    {
        var policies = new List<PolicyVersion> { new(Issuer, PolicyScope.Domain, PolicyEpoch, PolicyDigest) };
        if (FederationEpoch is { } fe && FederationDigest is { } fd)
        {
            policies.Add(new PolicyVersion(FederationName ?? Issuer, PolicyScope.Federation, fe, fd));
        }

        var iat = DateTimeOffset.FromUnixTimeSeconds(IssuedAt);
        return new GrantClaims(
            Issuer, Subject, Audience, GrantId, IntentId, IntentDigest, Action, Resource, policies, lineageIndex, AgentKey,
            iat, iat, DateTimeOffset.FromUnixTimeSeconds(ExpiresAt))
        { Renewal = Renewal };
    }
}
