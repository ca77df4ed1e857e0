using System.Collections.Concurrent;
using System.Text;
using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;

namespace MeshBus.Agent;

/// <summary>
/// The resource side (DESIGN.md §9): a resource accepts an action only from the holder of a valid grant. It checks that
/// the presenter holds the grant's <c>cnf</c> key (a signature over a challenge the resource chose), then the grant
/// itself (issuer key, <c>typ</c>, <c>aud</c> = this resource's domain, <c>exp</c>, the action and resource), and
/// that its policy epochs are not older than the newest this verifier has accepted (no rollback).
/// </summary>
/// <param name="audience">The resource's domain (the grants' <c>aud</c>).</param>
/// <param name="keys">Resolves the deciding domains' grant keys.</param>
/// <param name="timeProvider">The clock (tests move it).</param>
/// <param name="skew">Clock tolerance for <c>nbf</c>/<c>exp</c>.</param>
public sealed class GrantVerifier(string audience, IKeyResolver keys, TimeProvider? timeProvider = null, TimeSpan? skew = null)
{
    private const string ProofPrefix = "meshbus-grant-proof/v1\n";
    private readonly TimeProvider _clock = timeProvider ?? TimeProvider.System;
    private readonly ConcurrentDictionary<(string Domain, PolicyScope Scope), long> _latestEpochs = new();

    /// <summary>The bytes an agent signs to prove possession: a fixed prefix, then the challenge.</summary>
    public static byte[] ProofInput(ReadOnlySpan<byte> challenge) => [.. Encoding.ASCII.GetBytes(ProofPrefix), .. challenge];

    /// <summary>
    /// Verifies a presented grant. <paramref name="proof"/> is the presenter's base64url signature over
    /// <see cref="ProofInput"/> of <paramref name="challenge"/> (see <see cref="Lease.Prove"/>).
    /// </summary>
    public VerificationResult<GrantClaims> Verify(string grant, ReadOnlySpan<byte> challenge, string proof, string action, string resource)
    {
        var parsed = CompactJws.Parse(grant, Grants.Type);
        if (!parsed.IsValid)
        {
            return VerificationResult<GrantClaims>.Fail(parsed.Reason, parsed.Detail);
        }

        // The key the grant is bound to; the full grant check below confirms it is the signed cnf.
        if (!parsed.Value!.Payload.TryGetProperty("cnf", out var cnf) || !cnf.TryGetProperty("jwk", out var jwk) || !jwk.TryGetProperty("x", out var x)
            || !Base64Url.TryDecode(x.GetString(), out var agentKey))
        {
            return VerificationResult<GrantClaims>.Fail(GovernanceReason.MalformedInput, "grant has no cnf key");
        }

        if (!Base64Url.TryDecode(proof, out var signature) || !Ed25519Keys.Verify(agentKey, ProofInput(challenge), signature))
        {
            return VerificationResult<GrantClaims>.Fail(GovernanceReason.SignatureInvalid, "the presenter does not hold the grant's key");
        }

        var issuer = parsed.Value.Payload.TryGetProperty("iss", out var iss) ? iss.GetString() : null;
        var floor = _latestEpochs.Where(e => e.Key.Domain == issuer).Select(e => new PolicyVersion(e.Key.Domain, e.Key.Scope, e.Value, "")).ToList();
        var result = Grants.Verify(grant, new GrantVerificationOptions
        {
            Audience = audience,
            AgentPublicKey = agentKey,
            KeyResolver = keys,
            Now = _clock.GetUtcNow(),
            Skew = skew ?? TimeSpan.FromSeconds(30),
            MinPolicyEpochs = floor.Count == 0 ? null : floor,
        });
        if (!result.IsValid)
        {
            return result;
        }

        var claims = result.Value!;
        if (!string.Equals(claims.Action, action, StringComparison.Ordinal) || !string.Equals(claims.Resource, resource, StringComparison.Ordinal))
        {
            return VerificationResult<GrantClaims>.Fail(GovernanceReason.PolicyDenied, $"grant allows {claims.Action} on {claims.Resource}, not {action} on {resource}");
        }

        foreach (var p in claims.Policies)
        {
            _latestEpochs.AddOrUpdate((p.Domain, p.Scope), p.Epoch, (_, old) => Math.Max(old, p.Epoch));
        }

        return result;
    }
}
