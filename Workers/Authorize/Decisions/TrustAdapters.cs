using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Ledger.Decisions;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>
/// The keys the Authorize worker holds: a resolver of the domain's (and its peers') public keys to verify credentials,
/// the domain's grant signing key, and the sequence of the key set loaded. Only the <c>grant</c> usage's private key.
/// </summary>
/// <param name="Resolver">Verification keys (a <see cref="TrustConfig"/> or a <see cref="KeySet"/>).</param>
/// <param name="GrantSigner">The domain's grant key.</param>
/// <param name="KeySetSequence">The sequence of the domain key set loaded.</param>
public sealed record AuthorizeKeys(IKeyResolver Resolver, ISigner GrantSigner, long KeySetSequence)
{
    /// <summary>The domain's own root verifier key: it alone signs releases of this domain's quarantines.</summary>
    public VerifierKey? OwnRoot { get; init; }

    /// <summary>The verifier of governance statements: envelope keys through <see cref="Resolver"/>, roots pinned or own.</summary>
    public GovernanceVerifier GovernanceVerifier() =>
        new(Resolver, MeshBus.Trust.GovernanceVerifier.RootsOf(Resolver as TrustConfig, OwnRoot));
}

/// <summary>Credential and proof-of-possession checks on <see cref="Credentials"/> and <see cref="IntentSignature"/>.</summary>
public sealed class TrustIntentVerifier(AuthorizeKeys keys, IOptions<AuthorizeOptions> options) : IIntentVerifier
{
    // An agent presents the same credential with every intent: its signature is checked once per (key, credential);
    // the key is still resolved (revocation, key set) and the claims and times checked on every intent.
    private readonly VerifiedSignatures _signatures = new();

    /// <inheritdoc />
    public long KeySetSequence => keys.KeySetSequence;

    private TimeSpan Skew => TimeSpan.FromSeconds(options.Value.ClockSkewSeconds);

    /// <inheritdoc />
    public (VerifiedCredential? Credential, CheckFailure? Failure) VerifyCredential(string credential, DateTimeOffset now)
    {
        var result = Credentials.Verify(credential, keys.Resolver, now, Skew, _signatures);
        if (result.IsValid && result.Value is { } claims)
        {
            return (ToVerified(claims), null);
        }

        if (result.Reason == GovernanceReason.CredentialExpired && ValidityWindowEnd(credential) is { } end)
        {
            // Only the time failed: verify the signature at a moment inside its window to learn, with proof, whose it
            // is, so the denial can reach that agent (and nobody else).
            var within = Credentials.Verify(credential, keys.Resolver, end, Skew, _signatures);
            if (within.IsValid && within.Value is { } expired)
            {
                return (null, new CheckFailure(GovernanceReason.CredentialExpired, result.Detail, expired.Subject));
            }
        }

        return (null, new CheckFailure(result.Reason == GovernanceReason.None ? GovernanceReason.CredentialInvalid : result.Reason, result.Detail));
    }

    /// <inheritdoc />
    public string? VerifyIntent(IntentSubmitted intent, string agentKey)
    {
        if (!Base64Url.TryDecode(agentKey, out var key) || key.Length != Ed25519Keys.KeySize)
        {
            return null;
        }

        return IntentSignature.VerifiedDigest(intent, key);
    }

    private static VerifiedCredential ToVerified(CredentialClaims c)
    {
        var a = c.Attributes;
        var claims = new Dictionary<string, JsonElement>(StringComparer.Ordinal)
        {
            ["image_digest"] = JsonSerializer.SerializeToElement(a.ImageDigest),
            ["groups"] = JsonSerializer.SerializeToElement(a.Groups),
        };
        if (a.Runtime is not null)
        {
            claims["runtime"] = JsonSerializer.SerializeToElement(a.Runtime);
        }

        if (a.Owner is not null)
        {
            claims["owner"] = JsonSerializer.SerializeToElement(a.Owner);
        }

        return new VerifiedCredential(c.Subject, c.Issuer, c.AgentKey, c.CredentialId, claims);
    }

    private static DateTimeOffset? ValidityWindowEnd(string jws)
    {
        var parts = jws.Split('.');
        if (parts.Length != 3 || !Base64Url.TryDecode(parts[1], out var payload))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(payload);
            return doc.RootElement.TryGetProperty("exp", out var exp) && exp.TryGetInt64(out var seconds)
                ? DateTimeOffset.FromUnixTimeSeconds(seconds - 1)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>Grants on <see cref="Grants.Issue"/> with the domain's grant key (Ed25519: deterministic bytes).</summary>
public sealed class TrustGrantSigner(AuthorizeKeys keys) : IGrantSigner
{
    /// <inheritdoc />
    public string Sign(LeaseClaims c, long lineageIndex) => Grants.Issue(c.ToGrantClaims(lineageIndex), keys.GrantSigner);
}
