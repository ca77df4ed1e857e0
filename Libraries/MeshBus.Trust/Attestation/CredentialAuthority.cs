using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>Limits of issued credentials.</summary>
public sealed record CredentialPolicy
{
    /// <summary>Lifetime when the request names none.</summary>
    public TimeSpan DefaultLifetime { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>The longest lifetime granted, whatever the request asks.</summary>
    public TimeSpan MaxLifetime { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>
/// Handles <see cref="IssueCredential"/> for a home domain (hosted by the Sync worker, or run by
/// <c>meshbus agent issue</c>): verifies the attestation, checks that it names the requesting agent and public key,
/// and issues a short-lived credential bound (<c>cnf</c>) to that key. The lifetime never exceeds the attestation's.
/// </summary>
public sealed class CredentialAuthority
{
    private readonly string _domain;
    private readonly Func<DateTimeOffset, ISigner> _credentialKey;
    private readonly IAttestationVerifier _attestation;
    private readonly TimeProvider _time;
    private readonly CredentialPolicy _policy;

    /// <summary>Creates the authority.</summary>
    /// <param name="domain">The home domain.</param>
    /// <param name="credentialKey">The credential signer current at a time (e.g. <c>t => keys.Signer(KeyUsage.Credential, t)</c>).</param>
    /// <param name="attestation">The attestation verifier.</param>
    /// <param name="time">The clock.</param>
    /// <param name="policy">Lifetime limits.</param>
    public CredentialAuthority(string domain, Func<DateTimeOffset, ISigner> credentialKey, IAttestationVerifier attestation, TimeProvider time, CredentialPolicy? policy = null)
    {
        _domain = domain;
        _credentialKey = credentialKey;
        _attestation = attestation;
        _time = time;
        _policy = policy ?? new CredentialPolicy();
    }

    /// <summary>Creates the authority of a loaded domain directory (credential keys loaded, attesters from <c>attesters/</c>).</summary>
    public static CredentialAuthority ForDomain(DomainKeys keys, TimeProvider time, CredentialPolicy? policy = null, TimeSpan? skew = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var verifier = SignedStatementAttestationVerifier.FromDomainDirectory(keys.DirectoryPath, skew ?? TimeSpan.FromSeconds(30));
        return new CredentialAuthority(keys.Domain, t => keys.Signer(KeyUsage.Credential, t), verifier, time, policy);
    }

    /// <summary>
    /// Issues a credential, or fails with <see cref="GovernanceReason.UnknownDomain"/> (not this domain, or an agent
    /// outside it), <see cref="GovernanceReason.MalformedInput"/> (bad public key or TTL) or
    /// <see cref="GovernanceReason.CredentialInvalid"/> / <see cref="GovernanceReason.SignatureInvalid"/>
    /// (attestation invalid, or naming another agent or key).
    /// </summary>
    public VerificationResult<CredentialIssued> Issue(IssueCredential request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = _time.GetUtcNow();
        if (request.Domain != _domain)
        {
            return Fail(GovernanceReason.UnknownDomain, $"this authority issues for {_domain}, not {request.Domain}");
        }

        if (string.IsNullOrEmpty(request.Agent) || !request.Agent.StartsWith(_domain + "/", StringComparison.Ordinal))
        {
            return Fail(GovernanceReason.UnknownDomain, $"agent '{request.Agent}' is not a subject of {_domain}");
        }

        if (!Base64Url.TryDecode(request.AgentPublicKey, out var key) || key.Length != Ed25519Keys.KeySize)
        {
            return Fail(GovernanceReason.MalformedInput, "agent public key is not a 32-byte base64url Ed25519 key");
        }

        if (request.RequestedTtlSeconds is <= 0)
        {
            return Fail(GovernanceReason.MalformedInput, "requested TTL must be positive");
        }

        var attested = _attestation.Verify(request.Attestation, now);
        if (!attested.IsValid)
        {
            return Fail(attested.Reason, "attestation: " + attested.Detail);
        }

        var s = attested.Value!;
        if (s.Agent != request.Agent)
        {
            return Fail(GovernanceReason.CredentialInvalid, $"attestation names agent '{s.Agent}', not '{request.Agent}'");
        }

        if (s.AgentKey != request.AgentPublicKey)
        {
            return Fail(GovernanceReason.CredentialInvalid, "attestation names another public key");
        }

        var lifetime = request.RequestedTtlSeconds is { } ttl ? TimeSpan.FromSeconds(Math.Min(ttl, (long)_policy.MaxLifetime.TotalSeconds)) : _policy.DefaultLifetime;
        if (lifetime > _policy.MaxLifetime)
        {
            lifetime = _policy.MaxLifetime;
        }

        var issuedAt = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds());
        var expiresAt = issuedAt + lifetime;
        if (expiresAt > s.ExpiresAt)
        {
            expiresAt = s.ExpiresAt;
        }

        var claims = new CredentialClaims(_domain, request.Agent, request.RequestId.ToString("D"), request.AgentPublicKey,
            new AgentAttributes(s.ImageDigest, s.Runtime, s.Owner, s.Groups), issuedAt, issuedAt, expiresAt);
        var jws = Credentials.Issue(claims, _credentialKey(now));
        return VerificationResult<CredentialIssued>.Ok(new CredentialIssued(_domain, request.Agent, claims.CredentialId, jws, expiresAt) { RequestId = request.RequestId });
    }

    private static VerificationResult<CredentialIssued> Fail(GovernanceReason reason, string detail) => VerificationResult<CredentialIssued>.Fail(reason, detail);
}
