using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Policy;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>
/// Decisions on the policy library's <see cref="PolicyStore"/>: the domain policy, and the federation policy when one is
/// loaded (deny overrides across both). Bundles arrive as <see cref="PolicyPublished"/> on this replica's instance
/// endpoint (every replica loads every version) or from <c>Authorize:PolicyBundleFile</c> at start.
/// </summary>
public sealed class PolicyStoreDecisionPolicy : IDecisionPolicy
{
    private readonly PolicyStore _store = new();
    private readonly AuthorizeKeys _keys;
    private readonly TimeProvider _time;
    private readonly string _domain;

    /// <summary>Creates the store and loads the configured bundle file, if any.</summary>
    public PolicyStoreDecisionPolicy(AuthorizeKeys keys, TimeProvider time, IOptions<MeshBusOptions> mesh, IOptions<AuthorizeOptions> options, ILogger<PolicyStoreDecisionPolicy> logger)
    {
        _keys = keys;
        _time = time;
        _domain = mesh.Value.Domain;
        if (options.Value.PolicyBundleFile is { Length: > 0 } file)
        {
            var result = Load(File.ReadAllText(file));
            logger.LogInformation("Loaded the domain policy from {File}: epoch {Epoch}", file, result.Policy.Version.Epoch);
        }
    }

    /// <inheritdoc />
    public long LoadedEpoch => _store.Current(PolicyScope.Domain, _domain)?.Version.Epoch ?? -1;

    /// <summary>Verifies and installs a signed domain policy bundle (throws <c>PolicyBundleException</c> when refused).</summary>
    public PolicyLoadResult Load(string bundleJson)
    {
        var now = _time.GetUtcNow();
        var signers = PolicySigners.AnyKnownKey(keyId =>
        {
            foreach (var usage in KeyUsages.All)
            {
                if (_keys.Resolver.Resolve(_domain, keyId, usage, now) is { Found: true } key)
                {
                    return key.PublicKey;
                }
            }

            return null;
        });
        return _store.Load(bundleJson, signers, PolicyScope.Domain, _domain);
    }

    /// <inheritdoc />
    public PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now)
    {
        var scopes = new List<(PolicyScope, string)> { (PolicyScope.Domain, _domain) };
        if (_store.Current(PolicyScope.Federation, _domain) is not null)
        {
            scopes.Add((PolicyScope.Federation, _domain));
        }

        var d = _store.Decide(PolicyInput.For(intent, credential.Claims, now), scopes);
        var federation = d.Policies.FirstOrDefault(p => p.Scope == PolicyScope.Federation);
        return new PolicyOutcome(d.Allowed, d.Allowed ? GovernanceReason.None : d.Reason, d.Detail, d.MatchedRules, d.MaxLeaseSeconds,
            d.Epoch, d.Digest, federation?.Epoch, federation?.Digest);
    }
}
