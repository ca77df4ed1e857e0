using System.Text;
using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;

namespace MeshBus.Agent;

/// <summary>
/// The resource side (DESIGN.md §9): a resource accepts an action only from the holder of a valid grant. It checks that
/// the presenter holds the grant's <c>cnf</c> key (a signature over a challenge the resource chose), then the grant
/// itself (<c>iss</c> = <c>aud</c> = this resource's domain, the issuer's grant key, <c>typ</c>, <c>exp</c>, the action
/// and resource), and that its policy epochs are not older than the newest this verifier has accepted from the same
/// issuer (no rollback; <see cref="PolicyFloor"/>). It never throws on what it is given: every refusal is a result
/// with a reason.
/// </summary>
/// <param name="audience">The resource's domain (the grants' <c>aud</c> and <c>iss</c>).</param>
/// <param name="keys">Resolves the domain's grant keys.</param>
/// <param name="timeProvider">The clock (tests move it).</param>
/// <param name="skew">Clock tolerance for <c>nbf</c>/<c>exp</c>.</param>
public sealed class GrantVerifier(string audience, IKeyResolver keys, TimeProvider? timeProvider = null, TimeSpan? skew = null)
{
    private const string ProofPrefix = "meshbus-grant-proof/v1\n";
    private readonly TimeProvider _clock = timeProvider ?? TimeProvider.System;
    private readonly PolicyFloor _floor = new();

    /// <summary>The bytes an agent signs to prove possession: a fixed prefix, then the challenge.</summary>
    public static byte[] ProofInput(ReadOnlySpan<byte> challenge) => [.. Encoding.ASCII.GetBytes(ProofPrefix), .. challenge];

    /// <summary>
    /// Verifies a presented grant. <paramref name="proof"/> is the presenter's base64url signature over
    /// <see cref="ProofInput"/> of <paramref name="challenge"/> (see <see cref="Lease.Prove"/>).
    /// </summary>
    public VerificationResult<GrantClaims> Verify(string grant, ReadOnlySpan<byte> challenge, string proof, string action, string resource)
    {
        if (string.IsNullOrEmpty(grant) || string.IsNullOrEmpty(proof) || action is null || resource is null)
        {
            return Fail(GovernanceReason.MalformedInput, "grant, proof, action and resource are required");
        }

        var parsed = CompactJws.Parse(grant, Grants.Type);
        if (!parsed.IsValid)
        {
            return Fail(parsed.Reason, parsed.Detail);
        }

        // The key the grant is bound to; the full grant check below confirms it is the signed cnf.
        if (AgentKey(parsed.Value!.Payload) is not { } agentKey)
        {
            return Fail(GovernanceReason.MalformedInput, "grant has no cnf.jwk.x key of 32 bytes");
        }

        if (!Base64Url.TryDecode(proof, out var signature) || !Ed25519Keys.Verify(agentKey, ProofInput(challenge), signature))
        {
            return Fail(GovernanceReason.SignatureInvalid, "the presenter does not hold the grant's key");
        }

        var result = Grants.Verify(grant, new GrantVerificationOptions
        {
            Audience = audience,
            AgentPublicKey = agentKey,
            KeyResolver = keys,
            Now = _clock.GetUtcNow(),
            Skew = skew ?? TimeSpan.FromSeconds(30),
        });
        if (!result.IsValid)
        {
            return result;
        }

        var claims = result.Value!;
        if (!string.Equals(claims.Action, action, StringComparison.Ordinal) || !string.Equals(claims.Resource, resource, StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.PolicyDenied, $"grant allows {claims.Action} on {claims.Resource}, not {action} on {resource}");
        }

        var floor = _floor.Check(claims);
        if (!floor.IsValid)
        {
            return floor;
        }

        _floor.Raise(claims);
        return result;
    }

    /// <summary>The raw <c>cnf.jwk.x</c> key, or null when any part of it is missing or of the wrong JSON kind.</summary>
    private static byte[]? AgentKey(JsonElement payload)
    {
        if (payload.ValueKind != JsonValueKind.Object
            || !payload.TryGetProperty("cnf", out var cnf) || cnf.ValueKind != JsonValueKind.Object
            || !cnf.TryGetProperty("jwk", out var jwk) || jwk.ValueKind != JsonValueKind.Object
            || !jwk.TryGetProperty("x", out var x) || x.ValueKind != JsonValueKind.String
            || !Base64Url.TryDecode(x.GetString(), out var key) || key.Length != Ed25519Keys.KeySize)
        {
            return null;
        }

        return key;
    }

    private static VerificationResult<GrantClaims> Fail(GovernanceReason reason, string detail) => VerificationResult<GrantClaims>.Fail(reason, detail);
}
