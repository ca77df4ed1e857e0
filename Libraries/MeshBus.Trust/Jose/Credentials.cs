using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>Attested facts about an agent, carried in its credential (<c>claims</c>).</summary>
/// <param name="ImageDigest">The attested workload image digest, e.g. <c>sha256:…</c>.</param>
/// <param name="Runtime">The runtime the attester observed (e.g. <c>k8s</c>), if any.</param>
/// <param name="Owner">The owning team or person, if any.</param>
/// <param name="Groups">Groups the agent belongs to (policy selectors).</param>
public sealed record AgentAttributes(string ImageDigest, string? Runtime, string? Owner, IReadOnlyList<string> Groups);

/// <summary>
/// The claims of an agent credential (JWS, <c>typ: meshbus-credential+jwt</c>), issued by the agent's home domain.
/// Times are whole seconds (JWT NumericDate); finer parts are dropped when issuing.
/// </summary>
/// <param name="Issuer"><c>iss</c>: the home domain.</param>
/// <param name="Subject"><c>sub</c>: the agent subject, e.g. <c>acme.example/prod/agents/deployer</c>.</param>
/// <param name="CredentialId"><c>jti</c>: unique per credential (reused across the agent's intents; never a replay key).</param>
/// <param name="AgentKey"><c>cnf.jwk.x</c>: the agent's raw Ed25519 public key, base64url.</param>
/// <param name="Attributes"><c>claims</c>: the attested attributes.</param>
/// <param name="IssuedAt"><c>iat</c>.</param>
/// <param name="NotBefore"><c>nbf</c>.</param>
/// <param name="ExpiresAt"><c>exp</c>.</param>
public sealed record CredentialClaims(
    string Issuer,
    string Subject,
    string CredentialId,
    string AgentKey,
    AgentAttributes Attributes,
    DateTimeOffset IssuedAt,
    DateTimeOffset NotBefore,
    DateTimeOffset ExpiresAt);

/// <summary>Issues and verifies agent credentials.</summary>
public static class Credentials
{
    /// <summary>The JWS <c>typ</c> of a credential.</summary>
    public const string Type = "meshbus-credential+jwt";

    /// <summary>Signs a credential with the domain's credential key.</summary>
    public static string Issue(CredentialClaims claims, ISigner credentialKey)
    {
        ArgumentNullException.ThrowIfNull(claims);
        ArgumentNullException.ThrowIfNull(credentialKey);
        if (credentialKey.Usage != KeyUsage.Credential)
        {
            throw new ArgumentException($"a credential is signed with a credential key, not a {credentialKey.Usage.ToWire()} key", nameof(credentialKey));
        }

        ClaimsJson.CheckAgentKey(claims.AgentKey, "the credential's agent key");
        var a = claims.Attributes;
        var attributes = new JsonObject { ["image_digest"] = a.ImageDigest, ["groups"] = new JsonArray(a.Groups.Select(g => (JsonNode)JsonValue.Create(g)!).ToArray()) };
        if (a.Runtime is not null)
        {
            attributes["runtime"] = a.Runtime;
        }

        if (a.Owner is not null)
        {
            attributes["owner"] = a.Owner;
        }

        var payload = new JsonObject
        {
            ["iss"] = claims.Issuer,
            ["sub"] = claims.Subject,
            ["jti"] = claims.CredentialId,
            ["cnf"] = ClaimsJson.Confirmation(claims.AgentKey),
            ["claims"] = attributes,
            ["iat"] = ClaimsJson.Seconds(claims.IssuedAt),
            ["nbf"] = ClaimsJson.Seconds(claims.NotBefore),
            ["exp"] = ClaimsJson.Seconds(claims.ExpiresAt),
        };
        return CompactJws.Sign(JsonSerializer.SerializeToElement(payload), Type, credentialKey);
    }

    /// <summary>
    /// Verifies a credential: JOSE header (<see cref="CompactJws.Parse"/>), the issuer's credential key through
    /// <paramref name="keys"/> (unknown domain, unknown or revoked kid, wrong usage), the signature, the claims, and
    /// <c>nbf</c>/<c>exp</c> against <paramref name="now"/> with <paramref name="skew"/>.
    /// </summary>
    public static VerificationResult<CredentialClaims> Verify(string jws, IKeyResolver keys, DateTimeOffset now, TimeSpan skew) =>
        Verify(jws, keys, now, skew, null);

    /// <summary>
    /// <see cref="Verify(string, IKeyResolver, DateTimeOffset, TimeSpan)"/>, with the signature check answered from
    /// <paramref name="signatures"/> when the same key verified the same credential before. The key is resolved and the
    /// claims and times are checked on every call, so a revoked or expired key or credential fails as without the memo.
    /// </summary>
    public static VerificationResult<CredentialClaims> Verify(string jws, IKeyResolver keys, DateTimeOffset now, TimeSpan skew, VerifiedSignatures? signatures)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var parsed = CompactJws.Parse(jws, Type);
        if (!parsed.IsValid)
        {
            return Fail(parsed.Reason == GovernanceReason.MalformedInput ? GovernanceReason.MalformedInput : GovernanceReason.CredentialInvalid, parsed.Detail);
        }

        var token = parsed.Value!;
        string issuer;
        try
        {
            issuer = ClaimsJson.String(token.Payload, "iss");
        }
        catch (ClaimException e)
        {
            return Fail(GovernanceReason.CredentialInvalid, e.Message);
        }

        var key = keys.Resolve(issuer, token.KeyId, KeyUsage.Credential, now);
        if (!key.Found)
        {
            return Fail(key.Reason, key.Detail);
        }

        var verified = signatures is null
            ? token.VerifySignature(key.PublicKey)
            : signatures.Verify(key.PublicKey, token.SigningInput, token.Signature);
        if (!verified)
        {
            return Fail(GovernanceReason.SignatureInvalid, "credential signature does not verify");
        }

        CredentialClaims claims;
        try
        {
            claims = Read(token.Payload, issuer);
        }
        catch (ClaimException e)
        {
            return Fail(GovernanceReason.CredentialInvalid, e.Message);
        }

        if (now < claims.NotBefore - skew)
        {
            return Fail(GovernanceReason.CredentialExpired, $"credential not valid before {claims.NotBefore:O}");
        }

        if (now >= claims.ExpiresAt + skew)
        {
            return Fail(GovernanceReason.CredentialExpired, $"credential expired at {claims.ExpiresAt:O}");
        }

        return VerificationResult<CredentialClaims>.Ok(claims);
    }

    private static CredentialClaims Read(JsonElement p, string issuer)
    {
        if (!p.TryGetProperty("claims", out var a) || a.ValueKind != JsonValueKind.Object)
        {
            throw new ClaimException("claim 'claims' must be an object");
        }

        var attributes = new AgentAttributes(ClaimsJson.String(a, "image_digest"), ClaimsJson.OptionalString(a, "runtime"), ClaimsJson.OptionalString(a, "owner"), ClaimsJson.StringArray(a, "groups"));
        return new CredentialClaims(
            issuer,
            ClaimsJson.String(p, "sub"),
            ClaimsJson.String(p, "jti"),
            ClaimsJson.ReadConfirmation(p),
            attributes,
            ClaimsJson.Time(p, "iat"),
            ClaimsJson.Time(p, "nbf"),
            ClaimsJson.Time(p, "exp"));
    }

    private static VerificationResult<CredentialClaims> Fail(GovernanceReason reason, string detail) => VerificationResult<CredentialClaims>.Fail(reason, detail);
}
