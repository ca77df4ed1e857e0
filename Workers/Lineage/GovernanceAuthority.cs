using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;

namespace MeshBus.Workers.Lineage;

/// <summary>
/// Checks that a governance statement carries the authority it claims before the Lineage worker records it: what the
/// log holds is evidence, so a forged quarantine, release, acknowledgement, key set or policy must not become a leaf that
/// a third party later reads as the domain's word. The rules are the ones Authorize applies where it consumes the same
/// statements (docs/authorization.md): a quarantine and an acknowledgement by an envelope key of the stating domain, a
/// release by that domain's root naming the quarantine it lifts, a key set by its domain's pinned (or own) root, a domain
/// or egress policy by a grant key of its domain, a federation policy by every pinned root. Keys come from the domain
/// directory (<c>MeshBus:KeyDirectory</c>): the own key set and root, and the peers pinned in <c>trust/</c>.
/// </summary>
public sealed class GovernanceAuthority
{
    private readonly Func<DomainKeys> _load;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Loaded? _loaded;

    /// <summary>Creates the check over the keys <paramref name="load"/> returns (read once, on first use).</summary>
    public GovernanceAuthority(Func<DomainKeys> load, TimeProvider time)
    {
        _load = load;
        _time = time;
    }

    /// <summary>Why <paramref name="m"/> is refused, or null when its domain's envelope key signed it.</summary>
    public string? Refusal(AgentQuarantined m)
    {
        var r = Keys().Verifier.Verify(m, _time.GetUtcNow());
        return r.IsValid ? null : $"quarantine of {m.Agent} by {m.Domain} refused ({r.Reason}): {r.Detail}";
    }

    /// <summary>Why <paramref name="m"/> is refused, or null when its domain's root signed it and it names a quarantine.</summary>
    public string? Refusal(AgentReleased m)
    {
        var r = Keys().Verifier.Verify(m);
        return r.IsValid ? null : $"release of {m.Agent} by {m.Domain} refused ({r.Reason}): {r.Detail}";
    }

    /// <summary>Why <paramref name="m"/> is refused, or null when the acknowledging domain's envelope key signed it.</summary>
    public string? Refusal(PolicySynced m)
    {
        var r = Keys().Verifier.Verify(m, _time.GetUtcNow());
        return r.IsValid ? null : $"PolicySynced {m.Scope} epoch {m.Epoch} of {m.Domain} refused ({r.Reason}): {r.Detail}";
    }

    /// <summary>Why <paramref name="m"/> is refused, or null when the key set verifies against its domain's root and matches the message.</summary>
    public string? Refusal(KeySetPublished m)
    {
        var keys = Keys();
        if (!keys.Roots.TryGetValue(m.Domain, out var root))
        {
            return $"key set {m.Sequence} of {m.Domain} refused ({GovernanceReason.UnknownDomain}): no root pinned for '{m.Domain}'";
        }

        try
        {
            var set = KeySet.Verify(m.KeySet, root.PublicKey);
            return set.Domain != m.Domain || set.Sequence != m.Sequence
                ? $"key set of {m.Domain} refused ({GovernanceReason.MalformedInput}): the signed document is {set.Domain} sequence {set.Sequence}, the message says {m.Domain} sequence {m.Sequence}"
                : null;
        }
        catch (Exception e) when (e is KeySetException or FormatException or System.Text.Json.JsonException or ArgumentException)
        {
            return $"key set {m.Sequence} of {m.Domain} refused ({GovernanceReason.SignatureInvalid}): {e.Message}";
        }
    }

    /// <summary>Why <paramref name="m"/> is refused, or null when its bundle is the one described and signed by the keys its scope requires.</summary>
    public string? Refusal(PolicyPublished m)
    {
        var keys = Keys();
        if (!PolicyBundle.TryParse(m.Bundle, out var bundle, out var errors) || bundle is null)
        {
            return $"policy {m.Scope} epoch {m.Epoch} of {m.Domain} refused ({GovernanceReason.MalformedInput}): {string.Join("; ", errors.Select(e => e.ToString()))}";
        }

        if (bundle.Scope != m.Scope || bundle.Domain != m.Domain || bundle.Epoch != m.Epoch || bundle.Digest != m.Digest)
        {
            return $"policy of {m.Domain} refused ({GovernanceReason.MalformedInput}): the bundle is {bundle.Domain} {bundle.Scope} epoch {bundle.Epoch} {bundle.Digest}, the message says {m.Domain} {m.Scope} epoch {m.Epoch} {m.Digest}";
        }

        var signers = m.Scope == PolicyScope.Federation
            ? PolicySigners.EveryRoot(keys.Trust.PinnedRoots.Values)
            : PolicySigners.DomainGrantKeys(keys.Trust, m.Domain, _time.GetUtcNow());
        var problems = PolicyBundleSigning.Verify(bundle, signers);
        return problems.Count == 0
            ? null
            : $"policy {m.Scope} epoch {m.Epoch} of {m.Domain} refused ({GovernanceReason.SignatureInvalid}): {string.Join("; ", problems.Select(e => e.ToString()))}";
    }

    private Loaded Keys()
    {
        lock (_gate)
        {
            // Loaded on first use and kept; a failure (no key directory yet) is not cached, the next event tries again.
            if (_loaded is null)
            {
                var domain = _load();
                var trust = domain.LoadTrust();
                var roots = GovernanceVerifier.RootsOf(trust, domain.Root);
                _loaded = new Loaded(trust, roots, new GovernanceVerifier(trust, roots));
            }

            return _loaded;
        }
    }

    private sealed record Loaded(TrustConfig Trust, IReadOnlyDictionary<string, VerifierKey> Roots, GovernanceVerifier Verifier);
}
