using System.Text;
using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Policy.Cel;
using MeshBus.Policy.Evaluation;

namespace MeshBus.Policy;

/// <summary>
/// A bundle whose every condition compiled and type-checked against <see cref="PolicyInputSchema"/>, ready to decide.
/// Immutable and safe to use from many threads. Signatures and epochs are the business of <see cref="PolicyStore"/>.
/// </summary>
public sealed class CompiledPolicy
{
    private readonly CompiledRule[] _rules;
    private readonly SelectorIndex _index;
    private readonly string _label;

    private CompiledPolicy(PolicyBundle bundle, CompiledRule[] rules)
    {
        Bundle = bundle;
        _rules = rules;
        _index = new SelectorIndex([.. bundle.Rules.Select(r => r.Match)]);
        Version = new PolicyVersion(bundle.Scope, bundle.Domain, bundle.Epoch, bundle.Digest);
        _label = $"{PolicyBundle.ScopeName(bundle.Scope)} policy of {bundle.Domain} epoch {bundle.Epoch}";
    }

    /// <summary>The bundle as parsed.</summary>
    public PolicyBundle Bundle { get; }

    /// <summary>Scope, domain, epoch and digest.</summary>
    public PolicyVersion Version { get; }

    /// <summary>
    /// Compiles every condition. One bad rule refuses the whole bundle: throws <see cref="PolicyBundleException"/> listing
    /// every rule that failed, with its id, its position in <c>rules</c> and the line and column inside the condition.
    /// </summary>
    public static CompiledPolicy Compile(PolicyBundle bundle, CelLimits? limits = null) =>
        TryCompile(bundle, out var policy, out var errors, limits) ? policy! : throw new PolicyBundleException(errors);

    /// <summary>Parses and compiles a bundle document (signatures are not checked: see <see cref="PolicyStore"/>).</summary>
    public static CompiledPolicy Compile(string bundleJson, CelLimits? limits = null) => Compile(PolicyBundle.Parse(bundleJson), limits);

    /// <summary>Compiles every condition; on failure <paramref name="errors"/> lists every rule that failed.</summary>
    public static bool TryCompile(PolicyBundle bundle, out CompiledPolicy? policy, out IReadOnlyList<PolicyBundleError> errors, CelLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var env = CelEnvironment.Create(PolicyInputSchema.Variables, limits);
        var list = new List<PolicyBundleError>();
        var rules = new CompiledRule[bundle.Rules.Count];
        foreach (var rule in bundle.Rules)
        {
            CelProgram? program = null;
            if (rule.Condition is not null)
            {
                try
                {
                    program = env.Compile(rule.Condition);
                    if (!CelInput.IsBooleanType(program.ResultType))
                    {
                        list.Add(new(PolicyBundleErrorKind.Condition, $"rules[{rule.Index}].condition", $"a condition must be boolean, this one is {program.ResultType}", rule.Id, rule.Index, 1, 1));
                    }
                }
                catch (CelCompileException e)
                {
                    list.Add(new(PolicyBundleErrorKind.Condition, $"rules[{rule.Index}].condition", e.Message, rule.Id, rule.Index, e.Line, e.Column));
                }
            }

            rules[rule.Index] = new CompiledRule(rule, program);
        }

        errors = list;
        policy = list.Count == 0 ? new CompiledPolicy(bundle, rules) : null;
        return policy is not null;
    }

    /// <summary>Decides one input against this bundle alone (deny overrides; an error denies; no allow = NoMatchingRule).</summary>
    public PolicyDecision Decide(PolicyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Decide(CelInput.ToActivation(input), input.Intent.Action, input.Intent.Resource, useIndex: true);
    }

    /// <summary>The same decision found by checking every rule's selector instead of the index (the differential tests' oracle).</summary>
    internal PolicyDecision DecideByFullScan(PolicyInput input) =>
        Decide(CelInput.ToActivation(input), input.Intent.Action, input.Intent.Resource, useIndex: false);

    internal PolicyDecision Decide(CelActivation activation, string action, string resource, bool useIndex)
    {
        List<int>? matched = null;
        List<(int Rule, string Error)>? failed = null;
        if (useIndex)
        {
            foreach (var i in _index.CandidatesFor(action))
            {
                if (_index.ResourceMatches(i, resource))
                {
                    Evaluate(i, activation, ref matched, ref failed);
                }
            }
        }
        else
        {
            for (var i = 0; i < _rules.Length; i++)
            {
                if (_rules[i].Rule.Match.Matches(action, resource))
                {
                    Evaluate(i, activation, ref matched, ref failed);
                }
            }
        }

        return Outcome(matched, failed);
    }

    private void Evaluate(int i, CelActivation activation, ref List<int>? matched, ref List<(int, string)>? failed)
    {
        var program = _rules[i].Condition;
        if (program is null)
        {
            (matched ??= []).Add(i);
            return;
        }

        // CEL errors come back as values; anything else thrown by the engine is also an error of this rule, never an allow.
        CelValue result;
        try
        {
            result = program.Evaluate(activation);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            (failed ??= []).Add((i, "evaluation failed: " + e.Message));
            return;
        }

        if (result.IsError)
        {
            (failed ??= []).Add((i, result.ErrorMessage ?? "error"));
        }
        else if (CelInput.TryGetBool(result, out var b))
        {
            if (b)
            {
                (matched ??= []).Add(i);
            }
        }
        else
        {
            (failed ??= []).Add((i, "the condition did not evaluate to a bool"));
        }
    }

    private PolicyDecision Outcome(List<int>? matched, List<(int Rule, string Error)>? failed)
    {
        var matchedIds = matched is null ? [] : matched.Select(i => _rules[i].Rule.Id).ToArray();
        IReadOnlyList<string> failedIds = failed is null ? [] : failed.Select(f => _rules[f.Rule].Rule.Id).ToArray();
        var policies = new[] { Version };
        var denies = matched?.Where(i => _rules[i].Rule.Effect == RuleEffect.Deny).ToList();
        if (denies is { Count: > 0 })
        {
            var detail = new StringBuilder($"denied by {Names(denies)} ({_label})");
            AppendFailures(detail, failed);
            return new PolicyDecision(false, GovernanceReason.PolicyDenied, matchedIds, detail.ToString(), null, policies) { FailedRules = failedIds };
        }

        if (failed is { Count: > 0 })
        {
            var detail = new StringBuilder($"policy error ({_label})");
            AppendFailures(detail, failed);
            return new PolicyDecision(false, GovernanceReason.PolicyError, matchedIds, detail.ToString(), null, policies) { FailedRules = failedIds };
        }

        if (matched is { Count: > 0 })
        {
            long? lease = null;
            foreach (var i in matched)
            {
                if (_rules[i].Rule.Obligations?.MaxLeaseSeconds is { } l && (lease is null || l < lease))
                {
                    lease = l;
                }
            }

            return new PolicyDecision(true, GovernanceReason.None, matchedIds, $"allowed by {Names(matched)} ({_label})", lease, policies);
        }

        return new PolicyDecision(false, GovernanceReason.NoMatchingRule, [], $"no allow rule matched ({_label})", null, policies);
    }

    private string Names(List<int> rules) =>
        (rules.Count == 1 ? "rule " : "rules ") + string.Join(", ", rules.Select(i => $"'{_rules[i].Rule.Id}'"));

    private void AppendFailures(StringBuilder detail, List<(int Rule, string Error)>? failed)
    {
        if (failed is null)
        {
            return;
        }

        foreach (var (rule, error) in failed)
        {
            detail.Append($"; rule '{_rules[rule].Rule.Id}' (rules[{rule}]) failed to evaluate: {error}");
        }
    }

    private sealed record CompiledRule(PolicyRule Rule, CelProgram? Condition);
}
