using MeshBus.Contracts;
using MeshBus.Ledger.Decisions;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Paths;

/// <summary>
/// The origin's side of a cross-domain intent (DESIGN.md §3, "Cross-domain"): the endorsement an allowed egress decision
/// is released as. <see cref="LocalIntentPath"/> runs the steps and records the decision (kind <c>egress</c>, key
/// <c>decision:&lt;id&gt;</c>) before <see cref="Release"/> signs anything; the target decides and grants, and its answer
/// comes back over the bridge. This domain never grants a cross-domain intent itself.
/// </summary>
public sealed class EgressEndorser(AuthorizeKeys keys, IOptions<AuthorizeOptions> options)
{
    /// <summary>The endorsement window of an egress decision allowed at <paramref name="now"/>.</summary>
    public EndorsementTerms Terms(DateTimeOffset now)
    {
        var iat = now.ToUnixTimeSeconds();
        return new EndorsementTerms(iat, iat + Math.Max(1, options.Value.EndorsementTtlSeconds));
    }

    /// <summary>
    /// The endorsement of a recorded, allowed egress decision at its lineage index: everything signed comes from the
    /// record, so a redelivery republishes the byte-identical endorsement (canonical JSON, deterministic Ed25519).
    /// </summary>
    public EndorsementDecision Release(DecisionRecord record, long lineageIndex)
    {
        if (record.Kind != DecisionRecord.EgressKind || !record.Allowed || record.Endorsement is not { } terms)
        {
            throw new InvalidOperationException($"the record of intent {record.IntentId} is not an allowed egress decision; nothing to endorse");
        }

        var claims = new EndorsementClaims(
            record.Domain, record.Agent, record.TargetDomain, record.IntentId, record.IntentDigest, record.PolicyEpoch, record.PolicyDigest,
            string.IsNullOrEmpty(record.FederationDigest) ? null : record.FederationDigest, lineageIndex, DateTimeOffset.FromUnixTimeSeconds(terms.IssuedAt), DateTimeOffset.FromUnixTimeSeconds(terms.ExpiresAt));
        var endorsement = Endorsements.Issue(claims, keys.GrantSigner);
        return new EndorsementDecision(record.Agent, new IntentEndorsed(
            record.IntentId, record.Domain, record.TargetDomain, record.Intent, endorsement, record.PolicyEpoch, record.FederationDigest ?? ""));
    }
}
