using System.Collections.Concurrent;
using System.Globalization;
using MeshBus.Contracts;

namespace MeshBus.Trust;

/// <summary>
/// The rollback floor of a grant verifier: per signed issuer (<c>iss</c>), the highest epoch of every policy (domain,
/// egress and federation alike) that a <b>verified</b> grant of that issuer relied on. A later grant of the same issuer
/// must list each of those policies with an epoch not lower (DESIGN.md §3 phase 4). Keyed on the signed issuer, never
/// on an unsigned message field, and raised only by grants that verified, so one issuer's grants cannot move another
/// issuer's floor. Thread-safe.
/// </summary>
public sealed class PolicyFloor
{
    private readonly ConcurrentDictionary<(string Issuer, string Domain, PolicyScope Scope), long> _epochs = new();

    /// <summary>The floor epoch of one policy for grants of <paramref name="issuer"/> (0 when none was seen).</summary>
    public long Epoch(string issuer, string domain, PolicyScope scope) => _epochs.TryGetValue((issuer, domain, scope), out var e) ? e : 0;

    /// <summary>
    /// Checks verified <paramref name="claims"/> against the floor of their issuer: every policy the floor holds for it
    /// must appear with an epoch not lower. Fails with <see cref="GovernanceReason.PolicyRevoked"/>.
    /// </summary>
    public VerificationResult<GrantClaims> Check(GrantClaims claims)
    {
        ArgumentNullException.ThrowIfNull(claims);
        foreach (var floor in _epochs)
        {
            if (!string.Equals(floor.Key.Issuer, claims.Issuer, StringComparison.Ordinal))
            {
                continue;
            }

            var got = claims.Policies.FirstOrDefault(p => p.Domain == floor.Key.Domain && p.Scope == floor.Key.Scope);
            if (got is null || got.Epoch < floor.Value)
            {
                var had = got?.Epoch.ToString(CultureInfo.InvariantCulture) ?? "none";
                return VerificationResult<GrantClaims>.Fail(
                    GovernanceReason.PolicyRevoked,
                    $"grant of {claims.Issuer} relies on {floor.Key.Domain} {Grants.ScopeName(floor.Key.Scope)} policy epoch {had}, older than {floor.Value}");
            }
        }

        return VerificationResult<GrantClaims>.Ok(claims);
    }

    /// <summary>Raises the floor of the claims' issuer to their epochs. Call only with claims of a grant that verified.</summary>
    public void Raise(GrantClaims claims)
    {
        ArgumentNullException.ThrowIfNull(claims);
        foreach (var p in claims.Policies)
        {
            _epochs.AddOrUpdate((claims.Issuer, p.Domain, p.Scope), p.Epoch, (_, old) => Math.Max(old, p.Epoch));
        }
    }
}
