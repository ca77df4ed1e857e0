using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Policy.Evaluation;

namespace MeshBus.Policy;

/// <summary>
/// Decides over several bundles at once (the target domain's policy and the federation policy; or the origin's egress
/// policy and the federation policy). Deny overrides across them, and every bundle must allow: a matching deny or a
/// failed condition in any bundle denies, and a bundle where no allow matched denies with
/// <see cref="GovernanceReason.NoMatchingRule"/>.
/// </summary>
public static class PolicyEngine
{
    /// <summary>The combined decision; rule ids are prefixed with their scope when more than one bundle is given.</summary>
    public static PolicyDecision Decide(PolicyInput input, params IReadOnlyList<CompiledPolicy> policies)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(policies);
        if (policies.Count == 0)
        {
            return new PolicyDecision(false, GovernanceReason.NoMatchingRule, [], "no policy bundle to evaluate", null, []);
        }

        var activation = CelInput.ToActivation(input);
        var decisions = new PolicyDecision[policies.Count];
        for (var i = 0; i < policies.Count; i++)
        {
            decisions[i] = policies[i].Decide(activation, input.Intent.Action, input.Intent.Resource, useIndex: true);
        }

        return decisions.Length == 1 ? decisions[0] : Combine(decisions);
    }

    /// <summary>Combines per-bundle decisions (deny overrides, every bundle must allow), prefixing rule ids with their scope.</summary>
    public static PolicyDecision Combine(IReadOnlyList<PolicyDecision> decisions)
    {
        ArgumentNullException.ThrowIfNull(decisions);
        if (decisions.Count == 0)
        {
            return new PolicyDecision(false, GovernanceReason.NoMatchingRule, [], "no policy bundle to evaluate", null, []);
        }

        var matched = new List<string>();
        var failed = new List<string>();
        var policies = new List<PolicyVersion>();
        long? lease = null;
        foreach (var d in decisions)
        {
            var prefix = d.Policies.Count == 1 ? PolicyBundle.ScopeName(d.Policies[0].Scope) + ":" : string.Empty;
            matched.AddRange(d.MatchedRules.Select(r => prefix + r));
            failed.AddRange(d.FailedRules.Select(r => prefix + r));
            policies.AddRange(d.Policies);
            if (d.MaxLeaseSeconds is { } l && (lease is null || l < lease))
            {
                lease = l;
            }
        }

        // Deny overrides across bundles: an explicit deny first, then an evaluation error, then a missing allow.
        foreach (var reason in new[] { GovernanceReason.PolicyDenied, GovernanceReason.PolicyError, GovernanceReason.NoMatchingRule, GovernanceReason.SyncStale })
        {
            var refusing = decisions.Where(d => !d.Allowed && d.Reason == reason).ToList();
            if (refusing.Count > 0)
            {
                var detail = string.Join("; ", decisions.Where(d => !d.Allowed).Select(d => d.Detail));
                return new PolicyDecision(false, reason, matched, detail, null, policies) { FailedRules = failed };
            }
        }

        var other = decisions.FirstOrDefault(d => !d.Allowed);
        if (other is not null)
        {
            return new PolicyDecision(false, other.Reason, matched, other.Detail, null, policies) { FailedRules = failed };
        }

        return new PolicyDecision(true, GovernanceReason.None, matched, string.Join("; ", decisions.Select(d => d.Detail)), lease, policies);
    }
}
