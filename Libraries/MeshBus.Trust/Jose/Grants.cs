using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>One policy version a decision relied on.</summary>
/// <param name="Domain">The domain that published the policy.</param>
/// <param name="Scope">Domain, egress or federation.</param>
/// <param name="Epoch">The policy epoch.</param>
/// <param name="Digest">The bundle digest, <c>sha256:&lt;hex&gt;</c>.</param>
public sealed record PolicyVersion(string Domain, PolicyScope Scope, long Epoch, string Digest);

/// <summary>
/// The claims of a grant (JWS, <c>typ: meshbus-grant+jwt</c>): a lease bound to one intent digest and one agent key.
/// Times are whole seconds (JWT NumericDate). See docs/grants.md.
/// </summary>
/// <param name="Issuer"><c>iss</c>: the deciding domain.</param>
/// <param name="Subject"><c>sub</c>: the agent subject.</param>
/// <param name="Audience"><c>aud</c>: the target (resource) domain.</param>
/// <param name="GrantId"><c>jti</c>: the grant id.</param>
/// <param name="IntentId"><c>intent_id</c>.</param>
/// <param name="IntentDigest"><c>intent_digest</c>: <see cref="IntentSignature.Digest"/> of the intent.</param>
/// <param name="Action"><c>action</c>.</param>
/// <param name="Resource"><c>resource</c>.</param>
/// <param name="Policies"><c>policies</c>: the policy epochs and digests the decision used.</param>
/// <param name="LineageIndex"><c>lineage_index</c>: the decision record's index in the issuer's lineage log.</param>
/// <param name="AgentKey"><c>cnf.jwk.x</c>: the agent's raw Ed25519 public key, base64url.</param>
/// <param name="IssuedAt"><c>iat</c>.</param>
/// <param name="NotBefore"><c>nbf</c>.</param>
/// <param name="ExpiresAt"><c>exp</c>: the lease end.</param>
public sealed record GrantClaims(
    string Issuer,
    string Subject,
    string Audience,
    string GrantId,
    Guid IntentId,
    string IntentDigest,
    string Action,
    string Resource,
    IReadOnlyList<PolicyVersion> Policies,
    long LineageIndex,
    string AgentKey,
    DateTimeOffset IssuedAt,
    DateTimeOffset NotBefore,
    DateTimeOffset ExpiresAt)
{
    /// <summary><c>renewal</c>: 0 for the first grant, then 1, 2, … for each renewed lease.</summary>
    public int Renewal { get; init; }
}

/// <summary>What a grant must satisfy to be accepted.</summary>
public sealed record GrantVerificationOptions
{
    /// <summary>The expected <c>aud</c> and <c>iss</c>: the resource's domain (which alone issues grants for its resources).</summary>
    public required string Audience { get; init; }

    /// <summary>The presenting agent's raw public key; must equal the grant's <c>cnf</c>.</summary>
    public required byte[] AgentPublicKey { get; init; }

    /// <summary>Resolves the issuer's grant key (unknown domain, unknown or revoked kid).</summary>
    public required IKeyResolver KeyResolver { get; init; }

    /// <summary>The verification time.</summary>
    public required DateTimeOffset Now { get; init; }

    /// <summary>Tolerated clock difference for <c>nbf</c> and <c>exp</c>.</summary>
    public TimeSpan Skew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>When set, the grant's <c>intent_digest</c> must equal it.</summary>
    public string? IntentDigest { get; init; }

    /// <summary>
    /// When set, each listed (domain, scope) must appear in the grant with an epoch not lower than the listed one
    /// (no policy rollback). Digests here are ignored.
    /// </summary>
    public IReadOnlyList<PolicyVersion>? MinPolicyEpochs { get; init; }
}

/// <summary>Issues and verifies grants.</summary>
public static class Grants
{
    /// <summary>The JWS <c>typ</c> of a grant.</summary>
    public const string Type = "meshbus-grant+jwt";

    /// <summary>Signs a grant. The same claims and key give byte-identical tokens (canonical JSON, deterministic Ed25519).</summary>
    public static string Issue(GrantClaims claims, ISigner grantKey)
    {
        ArgumentNullException.ThrowIfNull(claims);
        ArgumentNullException.ThrowIfNull(grantKey);
        if (grantKey.Usage != KeyUsage.Grant)
        {
            throw new ArgumentException($"a grant is signed with a grant key, not a {grantKey.Usage.ToWire()} key", nameof(grantKey));
        }

        ClaimsJson.CheckAgentKey(claims.AgentKey, "the grant's agent key");
        return CompactJws.Sign(JsonSerializer.SerializeToElement(ToJson(claims)), Type, grantKey);
    }

    /// <summary>The JSON payload of a grant (before canonicalization).</summary>
    internal static JsonObject ToJson(GrantClaims c)
    {
        var policies = new JsonArray();
        foreach (var p in c.Policies)
        {
            policies.Add(new JsonObject { ["domain"] = p.Domain, ["scope"] = ScopeName(p.Scope), ["epoch"] = p.Epoch, ["digest"] = p.Digest });
        }

        return new JsonObject
        {
            ["iss"] = c.Issuer,
            ["sub"] = c.Subject,
            ["aud"] = c.Audience,
            ["jti"] = c.GrantId,
            ["intent_id"] = c.IntentId.ToString("D"),
            ["intent_digest"] = c.IntentDigest,
            ["action"] = c.Action,
            ["resource"] = c.Resource,
            ["policies"] = policies,
            ["lineage_index"] = c.LineageIndex,
            ["renewal"] = c.Renewal,
            ["cnf"] = ClaimsJson.Confirmation(c.AgentKey),
            ["iat"] = ClaimsJson.Seconds(c.IssuedAt),
            ["nbf"] = ClaimsJson.Seconds(c.NotBefore),
            ["exp"] = ClaimsJson.Seconds(c.ExpiresAt),
        };
    }

    /// <summary>
    /// Verifies a grant: JOSE header (only EdDSA, <c>typ</c> = grant, no <c>crit</c>/<c>jku</c>/<c>jwk</c>/<c>x5u</c>/<c>x5c</c>,
    /// no duplicate members), <c>iss</c> = <c>aud</c> = <see cref="GrantVerificationOptions.Audience"/> (a grant binds to
    /// the domain that issued it), the issuer's grant key (unknown domain, unknown or revoked kid), the signature, the
    /// claims, <c>aud</c>, <c>cnf</c>, the intent digest, the policy epochs and <c>nbf</c>/<c>exp</c> with skew.
    /// </summary>
    public static VerificationResult<GrantClaims> Verify(string jws, GrantVerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
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

        // Every genuine grant is issued by the domain that owns the resource (iss = aud): a pinned peer's grant key
        // signs grants for its own resources only, so a grant it minted for this domain is refused before any key is used.
        if (!string.Equals(issuer, options.Audience, StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.SignatureInvalid, $"grant issued by '{issuer}', not by the resource's domain '{options.Audience}'");
        }

        var key = options.KeyResolver.Resolve(issuer, token.KeyId, KeyUsage.Grant, options.Now);
        if (!key.Found)
        {
            return Fail(key.Reason, key.Detail);
        }

        if (!token.VerifySignature(key.PublicKey))
        {
            return Fail(GovernanceReason.SignatureInvalid, "grant signature does not verify");
        }

        GrantClaims claims;
        try
        {
            claims = Read(token.Payload, issuer);
        }
        catch (ClaimException e)
        {
            return Fail(GovernanceReason.MalformedInput, e.Message);
        }

        if (!string.Equals(claims.Audience, options.Audience, StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.SignatureInvalid, $"grant audience is '{claims.Audience}', not '{options.Audience}'");
        }

        if (!string.Equals(claims.AgentKey, Base64Url.Encode(options.AgentPublicKey), StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.SignatureInvalid, "grant cnf does not match the presenting agent's key");
        }

        if (options.IntentDigest is not null && !string.Equals(claims.IntentDigest, options.IntentDigest, StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.SignatureInvalid, "grant is bound to another intent digest");
        }

        if (options.MinPolicyEpochs is not null)
        {
            foreach (var min in options.MinPolicyEpochs)
            {
                var got = claims.Policies.FirstOrDefault(p => p.Domain == min.Domain && p.Scope == min.Scope);
                if (got is null || got.Epoch < min.Epoch)
                {
                    return Fail(GovernanceReason.PolicyRevoked, $"grant relies on {min.Domain} {ScopeName(min.Scope)} policy epoch {got?.Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, older than {min.Epoch}");
                }
            }
        }

        if (options.Now < claims.NotBefore - options.Skew)
        {
            return Fail(GovernanceReason.LeaseExpired, $"grant not valid before {claims.NotBefore:O}");
        }

        if (options.Now >= claims.ExpiresAt + options.Skew)
        {
            return Fail(GovernanceReason.LeaseExpired, $"grant expired at {claims.ExpiresAt:O}");
        }

        return VerificationResult<GrantClaims>.Ok(claims);
    }

    private static GrantClaims Read(JsonElement p, string issuer)
    {
        if (!p.TryGetProperty("policies", out var pols) || pols.ValueKind != JsonValueKind.Array)
        {
            throw new ClaimException("claim 'policies' must be an array");
        }

        var policies = new List<PolicyVersion>();
        foreach (var item in pols.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw new ClaimException("claim 'policies' must hold objects");
            }

            policies.Add(new PolicyVersion(ClaimsJson.String(item, "domain"), ParseScope(ClaimsJson.String(item, "scope")), ClaimsJson.Integer(item, "epoch"), ClaimsJson.String(item, "digest")));
        }

        var renewal = ClaimsJson.OptionalInteger(p, "renewal", 0);
        if (renewal is < 0 or > int.MaxValue)
        {
            throw new ClaimException("claim 'renewal' out of range");
        }

        return new GrantClaims(
            issuer,
            ClaimsJson.String(p, "sub"),
            ClaimsJson.String(p, "aud"),
            ClaimsJson.String(p, "jti"),
            ClaimsJson.Guid(p, "intent_id"),
            ClaimsJson.String(p, "intent_digest"),
            ClaimsJson.String(p, "action"),
            ClaimsJson.String(p, "resource"),
            policies,
            ClaimsJson.Integer(p, "lineage_index"),
            ClaimsJson.ReadConfirmation(p),
            ClaimsJson.Time(p, "iat"),
            ClaimsJson.Time(p, "nbf"),
            ClaimsJson.Time(p, "exp"))
        { Renewal = (int)renewal };
    }

    /// <summary>The wire name of a policy scope in grants: <c>domain</c>, <c>egress</c>, <c>federation</c>.</summary>
    public static string ScopeName(PolicyScope scope) => scope switch
    {
        PolicyScope.Domain => "domain",
        PolicyScope.Egress => "egress",
        PolicyScope.Federation => "federation",
        _ => throw new ArgumentOutOfRangeException(nameof(scope), scope, "unknown policy scope"),
    };

    private static PolicyScope ParseScope(string s) => s switch
    {
        "domain" => PolicyScope.Domain,
        "egress" => PolicyScope.Egress,
        "federation" => PolicyScope.Federation,
        _ => throw new ClaimException($"unknown policy scope '{s}'"),
    };

    private static VerificationResult<GrantClaims> Fail(GovernanceReason reason, string detail) => VerificationResult<GrantClaims>.Fail(reason, detail);
}
