using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Policy;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>
/// Decisions on the policy library's <see cref="PolicyStore"/>: as the target, the domain policy; as the origin of a
/// cross-domain intent, the egress policy; each with the federation policy when one is loaded (deny overrides). Bundles
/// arrive as <see cref="PolicyPublished"/> on this replica's instance endpoint (every replica loads every version) or
/// from <c>Authorize:PolicyBundleFile</c> and <c>Authorize:EgressPolicyBundleFile</c> at start.
/// </summary>
public sealed class PolicyStoreDecisionPolicy : IDecisionPolicy, IEgressPolicy, IPolicyBundles
{
    private readonly PolicyStore _store = new();
    private readonly AuthorizeKeys _keys;
    private readonly TimeProvider _time;
    private readonly string _domain;
    private readonly string? _federation;

    /// <summary>Creates the store and loads the configured bundle files, if any.</summary>
    public PolicyStoreDecisionPolicy(AuthorizeKeys keys, TimeProvider time, IOptions<MeshBusOptions> mesh, IOptions<AuthorizeOptions> options, ILogger<PolicyStoreDecisionPolicy> logger)
    {
        _keys = keys;
        _time = time;
        _domain = mesh.Value.Domain;
        _federation = string.IsNullOrWhiteSpace(options.Value.FederationName) ? null : options.Value.FederationName;
        foreach (var (scope, file) in new[]
        {
            (PolicyScope.Domain, options.Value.PolicyBundleFile), (PolicyScope.Egress, options.Value.EgressPolicyBundleFile),
            (PolicyScope.Federation, options.Value.FederationPolicyBundleFile),
        })
        {
            if (file is { Length: > 0 })
            {
                var result = Load(File.ReadAllText(file), scope);
                logger.LogInformation("Loaded the {Scope} policy from {File}: epoch {Epoch}", scope, file, result.Policy.Version.Epoch);
            }
        }
    }

    /// <inheritdoc />
    public long LoadedEpoch => _store.Current(PolicyScope.Domain, _domain)?.Version.Epoch ?? -1;

    /// <inheritdoc />
    public string LoadedFederationDigest => _federation is null ? "" : _store.Current(PolicyScope.Federation, _federation)?.Version.Digest ?? "";

    /// <inheritdoc />
    long IEgressPolicy.LoadedEpoch => _store.Current(PolicyScope.Egress, _domain)?.Version.Epoch ?? -1;

    /// <summary>Verifies and installs a signed domain policy bundle (throws <c>PolicyBundleException</c> when refused).</summary>
    public PolicyLoadResult Load(string bundleJson) => Load(bundleJson, PolicyScope.Domain);

    /// <summary>The federation this domain belongs to (<c>Authorize:FederationName</c>), if any.</summary>
    public string? FederationName => _federation;

    /// <summary>
    /// Verifies and installs a signed bundle (throws <c>PolicyBundleException</c> when refused): a domain or egress policy
    /// of this domain, signed by a grant key of its key set (no other usage verifies a bundle); or the policy of <see cref="FederationName"/>, signed by the root of
    /// every domain pinned in the trust config (<see cref="InvalidOperationException"/> when no federation is configured).
    /// </summary>
    public PolicyLoadResult Load(string bundleJson, PolicyScope scope)
    {
        if (scope == PolicyScope.Federation)
        {
            if (_federation is null)
            {
                throw new InvalidOperationException("a federation policy arrived but Authorize:FederationName is not set");
            }

            if (_keys.Resolver is not TrustConfig trust || trust.PinnedRoots.Count == 0)
            {
                throw new InvalidOperationException("a federation policy needs the trust config with the members' pinned roots");
            }

            return _store.Load(bundleJson, PolicySigners.EveryRoot(trust.PinnedRoots.Values), PolicyScope.Federation, _federation);
        }

        var signers = PolicySigners.DomainGrantKeys(_keys.Resolver, _domain, _time.GetUtcNow());
        return _store.Load(bundleJson, signers, scope, _domain);
    }

    /// <inheritdoc />
    public PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now) =>
        Decide(PolicyScope.Domain, intent, credential, now);

    /// <inheritdoc />
    PolicyOutcome IEgressPolicy.Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now)
    {
        if (_store.Current(PolicyScope.Egress, _domain) is null)
        {
            // Not SyncStale: nothing is late, this domain has simply not allowed its agents anywhere else.
            return new PolicyOutcome(false, GovernanceReason.NoMatchingRule,
                $"no egress policy of {_domain} is loaded: nothing allows its agents to act in {intent.TargetDomain}", [], null, -1, "");
        }

        return Decide(PolicyScope.Egress, intent, credential, now);
    }

    private PolicyOutcome Decide(PolicyScope scope, IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now)
    {
        var scopes = new List<(PolicyScope, string)> { (scope, _domain) };
        if (_federation is not null)
        {
            if (_store.Current(PolicyScope.Federation, _federation) is null)
            {
                // Configured, not yet here: governance is not synchronized, whatever the domain's own policy says.
                return new PolicyOutcome(false, GovernanceReason.SyncStale,
                    $"the policy of federation {_federation} is not loaded yet: no decision without it", [], null, LoadedEpoch, "");
            }

            scopes.Add((PolicyScope.Federation, _federation));
        }

        var d = _store.Decide(PolicyInput.For(intent, credential.Claims, now), scopes);
        var federation = d.Policies.FirstOrDefault(p => p.Scope == PolicyScope.Federation);
        return new PolicyOutcome(d.Allowed, d.Allowed ? GovernanceReason.None : d.Reason, d.Detail, d.MatchedRules, d.MaxLeaseSeconds,
            d.Epoch, d.Digest, federation?.Epoch, federation?.Digest)
        { FederationName = federation?.Domain };
    }
}
