using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;

namespace MeshBus.Trust;

/// <summary>
/// The claims of an endorsement (JWS, <c>typ: meshbus-endorsement+jwt</c>): the origin domain's statement that its
/// egress policy allowed one intent of one of its agents to go to one target domain. Signed with the origin's
/// <c>grant</c> key; the target decides, and only its grant authorizes anything. Times are whole seconds (JWT
/// NumericDate). See docs/authorization.md, "Cross-domain intents".
/// </summary>
/// <param name="Issuer"><c>iss</c>: the origin (endorsing) domain, the agent's home.</param>
/// <param name="Subject"><c>sub</c>: the agent subject.</param>
/// <param name="Audience"><c>aud</c>: the target domain, the only one that may act on the endorsement.</param>
/// <param name="IntentId"><c>intent_id</c>.</param>
/// <param name="IntentDigest"><c>intent_digest</c>: <see cref="IntentSignature.Digest"/> of the endorsed intent.</param>
/// <param name="EgressEpoch"><c>egress_epoch</c>: the origin's egress policy epoch that allowed it.</param>
/// <param name="EgressDigest"><c>egress_digest</c>: that egress policy's digest.</param>
/// <param name="FederationDigest"><c>federation_digest</c>: the federation policy digest the origin decided with; null
/// (claim absent) when it had none.</param>
/// <param name="LineageIndex"><c>lineage_index</c>: the egress decision's index in the origin's lineage log.</param>
/// <param name="IssuedAt"><c>iat</c>.</param>
/// <param name="ExpiresAt"><c>exp</c>: the endorsement is refused from then on (plus skew).</param>
public sealed record EndorsementClaims(
    string Issuer,
    string Subject,
    string Audience,
    Guid IntentId,
    string IntentDigest,
    long EgressEpoch,
    string EgressDigest,
    string? FederationDigest,
    long LineageIndex,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt);

/// <summary>What an endorsement must satisfy beyond its signature.</summary>
public sealed record EndorsementVerificationOptions
{
    /// <summary>The expected <c>aud</c>: the verifying (target) domain.</summary>
    public required string Audience { get; init; }

    /// <summary>Resolves the issuer's grant key (unknown domain, unknown or revoked kid, wrong usage).</summary>
    public required IKeyResolver KeyResolver { get; init; }

    /// <summary>The verification time (also the time the issuer's key must be valid at).</summary>
    public required DateTimeOffset Now { get; init; }

    /// <summary>Tolerated clock difference for <c>iat</c> and <c>exp</c>.</summary>
    public TimeSpan Skew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The digest of the intent the endorsement arrived with; the <c>intent_digest</c> claim must equal it.</summary>
    public required string IntentDigest { get; init; }
}

/// <summary>Issues and verifies endorsements (the cross-domain hand-off from the origin's egress decision to the target).</summary>
public static class Endorsements
{
    /// <summary>
    /// The JWS <c>typ</c> of an endorsement. Distinct from <see cref="Grants.Type"/>: both are signed with a domain's
    /// grant key, and the <c>typ</c> check is what keeps an endorsement from passing as a grant and a grant from passing
    /// as an endorsement.
    /// </summary>
    public const string Type = "meshbus-endorsement+jwt";

    /// <summary>Signs an endorsement. The same claims and key give byte-identical tokens (canonical JSON, deterministic Ed25519).</summary>
    public static string Issue(EndorsementClaims claims, ISigner grantKey)
    {
        ArgumentNullException.ThrowIfNull(claims);
        ArgumentNullException.ThrowIfNull(grantKey);
        if (grantKey.Usage != KeyUsage.Grant)
        {
            throw new ArgumentException($"an endorsement is signed with a grant key, not a {grantKey.Usage.ToWire()} key", nameof(grantKey));
        }

        foreach (var (name, value) in new[]
        {
            ("iss", claims.Issuer), ("sub", claims.Subject), ("aud", claims.Audience), ("intent_digest", claims.IntentDigest), ("egress_digest", claims.EgressDigest),
        })
        {
            if (string.IsNullOrEmpty(value))
            {
                throw new ArgumentException($"the endorsement's '{name}' is empty", nameof(claims));
            }
        }

        if (claims.FederationDigest is { Length: 0 })
        {
            throw new ArgumentException("the endorsement's federation digest is empty; use null when there is no federation policy", nameof(claims));
        }

        var payload = new JsonObject
        {
            ["iss"] = claims.Issuer,
            ["sub"] = claims.Subject,
            ["aud"] = claims.Audience,
            ["intent_id"] = claims.IntentId.ToString("D"),
            ["intent_digest"] = claims.IntentDigest,
            ["egress_epoch"] = claims.EgressEpoch,
            ["egress_digest"] = claims.EgressDigest,
            ["lineage_index"] = claims.LineageIndex,
            ["iat"] = ClaimsJson.Seconds(claims.IssuedAt),
            ["exp"] = ClaimsJson.Seconds(claims.ExpiresAt),
        };
        if (claims.FederationDigest is not null)
        {
            payload["federation_digest"] = claims.FederationDigest;
        }

        return CompactJws.Sign(JsonSerializer.SerializeToElement(payload), Type, grantKey);
    }

    /// <summary>
    /// Establishes who endorsed: the JOSE header (<see cref="CompactJws.Parse"/>: only EdDSA, <c>typ</c> = endorsement,
    /// no key-selecting or critical headers), the <c>iss</c> domain's <c>grant</c> key resolved through
    /// <paramref name="keys"/> at <paramref name="now"/> (unknown domain, unknown or revoked kid, another usage), the
    /// signature, and readable claims. Audience, intent digest and time are <see cref="Verify"/>'s checks; a caller that
    /// must tell "who sent this" apart from "what is wrong with it" calls this first.
    /// </summary>
    public static VerificationResult<EndorsementClaims> VerifySignature(string jws, IKeyResolver keys, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var parsed = CompactJws.Parse(jws, Type);
        if (!parsed.IsValid)
        {
            return Fail(parsed.Reason, parsed.Detail);
        }

        var token = parsed.Value!;
        string issuer;
        try
        {
            issuer = ClaimsJson.String(token.Payload, "iss");
        }
        catch (ClaimException e)
        {
            return Fail(GovernanceReason.MalformedInput, e.Message);
        }

        var key = keys.Resolve(issuer, token.KeyId, KeyUsage.Grant, now);
        if (!key.Found)
        {
            return Fail(key.Reason, key.Detail);
        }

        if (!token.VerifySignature(key.PublicKey))
        {
            return Fail(GovernanceReason.SignatureInvalid, "endorsement signature does not verify");
        }

        try
        {
            return VerificationResult<EndorsementClaims>.Ok(Read(token.Payload, issuer));
        }
        catch (ClaimException e)
        {
            return Fail(GovernanceReason.MalformedInput, e.Message);
        }
    }

    /// <summary>
    /// Verifies an endorsement completely: <see cref="VerifySignature"/>, then <c>aud</c> = the verifier's domain and
    /// <c>intent_digest</c> = the digest of the enclosed intent (<see cref="GovernanceReason.SignatureInvalid"/>),
    /// <c>iat</c> not in the future beyond the skew (<see cref="GovernanceReason.MalformedInput"/>) and <c>exp</c> not
    /// passed beyond it (<see cref="GovernanceReason.SyncStale"/>: the origin's egress decision is too old to act on).
    /// </summary>
    public static VerificationResult<EndorsementClaims> Verify(string jws, EndorsementVerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var signed = VerifySignature(jws, options.KeyResolver, options.Now);
        return signed.IsValid ? CheckClaims(signed.Value!, options) : signed;
    }

    /// <summary>
    /// The checks of <see cref="Verify"/> after the signature, on claims <see cref="VerifySignature"/> already
    /// established (a caller that verified the signature first does not verify it again).
    /// </summary>
    public static VerificationResult<EndorsementClaims> CheckClaims(EndorsementClaims claims, EndorsementVerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(claims);
        ArgumentNullException.ThrowIfNull(options);
        if (!string.Equals(claims.Audience, options.Audience, StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.SignatureInvalid, $"endorsement audience is '{claims.Audience}', not '{options.Audience}'");
        }

        if (!string.Equals(claims.IntentDigest, options.IntentDigest, StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.SignatureInvalid, $"endorsement is bound to intent digest {claims.IntentDigest}, the enclosed intent's is {options.IntentDigest}");
        }

        if (options.Now < claims.IssuedAt - options.Skew)
        {
            return Fail(GovernanceReason.MalformedInput, $"endorsement issued in the future ({claims.IssuedAt:O})");
        }

        if (options.Now >= claims.ExpiresAt + options.Skew)
        {
            return Fail(GovernanceReason.SyncStale, $"endorsement expired at {claims.ExpiresAt:O}");
        }

        return VerificationResult<EndorsementClaims>.Ok(claims);
    }

    private static EndorsementClaims Read(JsonElement p, string issuer)
    {
        var lineageIndex = ClaimsJson.Integer(p, "lineage_index");
        if (lineageIndex < 0)
        {
            throw new ClaimException("claim 'lineage_index' must not be negative");
        }

        var federation = ClaimsJson.OptionalString(p, "federation_digest");
        if (federation is { Length: 0 })
        {
            throw new ClaimException("claim 'federation_digest' must be absent or a non-empty string");
        }

        var issuedAt = ClaimsJson.Time(p, "iat");
        var expiresAt = ClaimsJson.Time(p, "exp");
        if (expiresAt <= issuedAt)
        {
            throw new ClaimException("claim 'exp' must be after 'iat'");
        }

        return new EndorsementClaims(
            issuer,
            ClaimsJson.String(p, "sub"),
            ClaimsJson.String(p, "aud"),
            ClaimsJson.Guid(p, "intent_id"),
            ClaimsJson.String(p, "intent_digest"),
            ClaimsJson.Integer(p, "egress_epoch"),
            ClaimsJson.String(p, "egress_digest"),
            federation,
            lineageIndex,
            issuedAt,
            expiresAt);
    }

    private static VerificationResult<EndorsementClaims> Fail(GovernanceReason reason, string detail) => VerificationResult<EndorsementClaims>.Fail(reason, detail);
}
