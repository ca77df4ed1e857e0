using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Policy.Cel;

namespace MeshBus.Policy;

/// <summary>What <see cref="PolicyStore.Load"/> did with a bundle that it accepted.</summary>
public enum PolicyLoadOutcome
{
    /// <summary>The bundle is newer than the loaded one (or the first) and is now current.</summary>
    Loaded,

    /// <summary>The same epoch and digest were already current (a redelivery); nothing changed.</summary>
    AlreadyCurrent,
}

/// <summary>The result of loading a bundle.</summary>
/// <param name="Outcome">Loaded or already current.</param>
/// <param name="Policy">The current compiled policy for the bundle's scope and domain.</param>
public sealed record PolicyLoadResult(PolicyLoadOutcome Outcome, CompiledPolicy Policy);

/// <summary>
/// The current policy per (scope, domain), as the Authorize worker holds it. A bundle is accepted only when it parses,
/// its digest matches, it is signed as <see cref="PolicySigners"/> requires, every condition compiles, and its epoch is
/// higher than the current one (or equal with the same digest: a redelivery). Anything else is refused with
/// <see cref="PolicyBundleException"/> and leaves the current policy untouched. Thread-safe; decisions read a snapshot.
/// </summary>
public sealed class PolicyStore
{
    private readonly object _gate = new();
    private readonly CelLimits? _limits;
    private readonly Dictionary<(PolicyScope, string), long> _minimumEpochs = [];
    private volatile Dictionary<(PolicyScope, string), CompiledPolicy> _current = [];

    /// <summary>Creates an empty store; <paramref name="limits"/> bound every condition (default: <see cref="CelLimits.Default"/>).</summary>
    public PolicyStore(CelLimits? limits = null) => _limits = limits;

    /// <summary>
    /// Verifies, compiles and installs a signed bundle. When <paramref name="expectedScope"/> or
    /// <paramref name="expectedDomain"/> is given, a bundle for another scope or domain is refused.
    /// </summary>
    /// <exception cref="PolicyBundleException">The bundle is malformed, tampered, not signed as required, has a rule that
    /// does not compile, or its epoch goes backwards; <see cref="PolicyBundleException.Errors"/> says which.</exception>
    public PolicyLoadResult Load(string bundleJson, PolicySigners signers, PolicyScope? expectedScope = null, string? expectedDomain = null)
    {
        ArgumentNullException.ThrowIfNull(bundleJson);
        ArgumentNullException.ThrowIfNull(signers);
        var bundle = PolicyBundle.Parse(bundleJson);
        if ((expectedScope is { } s && s != bundle.Scope) || (expectedDomain is not null && expectedDomain != bundle.Domain))
        {
            throw new PolicyBundleException(new PolicyBundleError(PolicyBundleErrorKind.WrongScope, "",
                $"expected the {(expectedScope is { } es ? PolicyBundle.ScopeName(es) : PolicyBundle.ScopeName(bundle.Scope))} policy of {expectedDomain ?? bundle.Domain}, got the {PolicyBundle.ScopeName(bundle.Scope)} policy of {bundle.Domain}"));
        }

        var signatureErrors = PolicyBundleSigning.Verify(bundle, signers);
        if (signatureErrors.Count > 0)
        {
            throw new PolicyBundleException(signatureErrors);
        }

        var key = (bundle.Scope, bundle.Domain);
        // Cheap epoch check before compiling, repeated under the lock below.
        var early = CheckEpoch(bundle, key);
        if (early is not null)
        {
            return early;
        }

        var policy = CompiledPolicy.Compile(bundle, _limits);
        lock (_gate)
        {
            var again = CheckEpoch(bundle, key);
            if (again is not null)
            {
                return again;
            }

            var next = new Dictionary<(PolicyScope, string), CompiledPolicy>(_current) { [key] = policy };
            _current = next;
            return new PolicyLoadResult(PolicyLoadOutcome.Loaded, policy);
        }
    }

    /// <summary>
    /// Refuses, from now on, any bundle for (<paramref name="scope"/>, <paramref name="domain"/>) with an epoch below
    /// <paramref name="epoch"/>: restores the high-water mark a worker persisted before a restart.
    /// </summary>
    public void SetMinimumEpoch(PolicyScope scope, string domain, long epoch)
    {
        lock (_gate)
        {
            _minimumEpochs[(scope, domain)] = Math.Max(epoch, _minimumEpochs.GetValueOrDefault((scope, domain)));
        }
    }

    /// <summary>The current policy for a scope and domain, or null when none is loaded.</summary>
    public CompiledPolicy? Current(PolicyScope scope, string domain) =>
        _current.TryGetValue((scope, domain), out var p) ? p : null;

    /// <summary>
    /// Decides over the current bundles of the given (scope, domain) pairs with <see cref="PolicyEngine.Decide"/>. A pair
    /// with no bundle loaded denies with <see cref="GovernanceReason.SyncStale"/>: no policy is never an allow.
    /// </summary>
    public PolicyDecision Decide(PolicyInput input, params IReadOnlyList<(PolicyScope Scope, string Domain)> policies)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(policies);
        var snapshot = _current;
        var compiled = new List<CompiledPolicy>(policies.Count);
        var missing = new List<string>();
        foreach (var (scope, domain) in policies)
        {
            if (snapshot.TryGetValue((scope, domain), out var p))
            {
                compiled.Add(p);
            }
            else
            {
                missing.Add($"{PolicyBundle.ScopeName(scope)} policy of {domain}");
            }
        }

        if (missing.Count > 0 || compiled.Count == 0)
        {
            return new PolicyDecision(false, GovernanceReason.SyncStale, [],
                missing.Count > 0 ? "no policy loaded: " + string.Join(", ", missing) : "no policy requested",
                null, [.. compiled.Select(c => c.Version)]);
        }

        return PolicyEngine.Decide(input, compiled);
    }

    private PolicyLoadResult? CheckEpoch(PolicyBundle bundle, (PolicyScope, string) key)
    {
        var label = $"{PolicyBundle.ScopeName(bundle.Scope)} policy of {bundle.Domain}";
        if (_current.TryGetValue(key, out var current))
        {
            if (bundle.Epoch == current.Version.Epoch && bundle.Digest == current.Version.Digest)
            {
                return new PolicyLoadResult(PolicyLoadOutcome.AlreadyCurrent, current);
            }

            if (bundle.Epoch <= current.Version.Epoch)
            {
                throw new PolicyBundleException(new PolicyBundleError(PolicyBundleErrorKind.EpochRollback, "epoch",
                    bundle.Epoch == current.Version.Epoch
                        ? $"epoch {bundle.Epoch} of the {label} is already loaded with digest {current.Version.Digest}; a different bundle must have a higher epoch"
                        : $"epoch {bundle.Epoch} of the {label} is older than the loaded epoch {current.Version.Epoch} (rollback refused)"));
            }
        }

        lock (_gate)
        {
            if (_minimumEpochs.TryGetValue(key, out var min) && bundle.Epoch < min)
            {
                throw new PolicyBundleException(new PolicyBundleError(PolicyBundleErrorKind.EpochRollback, "epoch",
                    $"epoch {bundle.Epoch} of the {label} is older than epoch {min} seen before (rollback refused)"));
            }
        }

        return null;
    }
}
