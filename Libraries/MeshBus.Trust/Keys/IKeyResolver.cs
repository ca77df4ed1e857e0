using MeshBus.Contracts;

namespace MeshBus.Trust;

/// <summary>Finds the public key a domain published for a key id and usage, valid at a given time.</summary>
public interface IKeyResolver
{
    /// <summary>
    /// Resolves <paramref name="keyId"/> of <paramref name="domain"/> for <paramref name="usage"/> at
    /// <paramref name="at"/>: checks the key set's expiry, the key's validity window, revocation and usage.
    /// </summary>
    KeyResolution Resolve(string domain, string keyId, KeyUsage usage, DateTimeOffset at);
}

/// <summary>The outcome of <see cref="IKeyResolver.Resolve"/>: a public key, or a reason it cannot be used.</summary>
/// <param name="PublicKey">The raw Ed25519 public key when found; null otherwise.</param>
/// <param name="Reason"><see cref="GovernanceReason.None"/> when found; else <see cref="GovernanceReason.UnknownDomain"/>,
/// <see cref="GovernanceReason.SignatureInvalid"/> (unknown key id, wrong usage, outside its window),
/// <see cref="GovernanceReason.KeyRevoked"/> or <see cref="GovernanceReason.SyncStale"/> (key set expired).</param>
/// <param name="Detail">Explanation for logs and denials.</param>
public sealed record KeyResolution(byte[]? PublicKey, GovernanceReason Reason, string Detail)
{
    /// <summary>Whether a usable key was found.</summary>
    public bool Found => PublicKey is not null;

    /// <summary>A found key.</summary>
    public static KeyResolution Ok(byte[] publicKey) => new(publicKey, GovernanceReason.None, "");

    /// <summary>A failure with a reason.</summary>
    public static KeyResolution Fail(GovernanceReason reason, string detail) => new(null, reason, detail);
}

/// <summary>The outcome of verifying a signed artifact.</summary>
/// <typeparam name="T">The verified content.</typeparam>
/// <param name="IsValid">Whether every check passed.</param>
/// <param name="Value">The verified content, only when valid.</param>
/// <param name="Reason"><see cref="GovernanceReason.None"/> when valid, else why not.</param>
/// <param name="Detail">Which check failed.</param>
public sealed record VerificationResult<T>(bool IsValid, T? Value, GovernanceReason Reason, string Detail)
{
    /// <summary>A valid result.</summary>
    public static VerificationResult<T> Ok(T value) => new(true, value, GovernanceReason.None, "");

    /// <summary>A failed result.</summary>
    public static VerificationResult<T> Fail(GovernanceReason reason, string detail) => new(false, default, reason, detail);
}
