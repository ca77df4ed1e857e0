using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class DecisionSemanticsTests
{
    private static string Bundle(params (string Id, string Effect, string Actions, string Resources, string? Condition, long? Lease)[] rules)
    {
        var array = new JsonArray();
        foreach (var r in rules)
        {
            var o = new JsonObject
            {
                ["id"] = r.Id,
                ["effect"] = r.Effect,
                ["match"] = new JsonObject
                {
                    ["actions"] = new JsonArray([.. r.Actions.Split(',').Select(a => (JsonNode)a)]),
                    ["resources"] = new JsonArray([.. r.Resources.Split(',').Select(a => (JsonNode)a)]),
                },
            };
            if (r.Condition is not null)
            {
                o["condition"] = r.Condition;
            }

            if (r.Lease is not null)
            {
                o["obligations"] = new JsonObject { ["maxLeaseSeconds"] = r.Lease };
            }

            array.Add(o);
        }

        return new JsonObject
        {
            ["format"] = "meshbus-policy/v1",
            ["scope"] = "domain",
            ["domain"] = "acme.example/prod",
            ["epoch"] = 3,
            ["rules"] = array,
        }.ToJsonString();
    }

    private static readonly string Table = Bundle(
        ("allow-deploy", "allow", "deploy", "k8s://prod/**", "'deployers' in agent.claims.groups", 600),
        ("allow-deploy-short", "allow", "deploy,restart", "k8s://prod/web", "intent.maxDurationSeconds <= 900", 120),
        ("deny-db", "deny", "*", "k8s://prod/db/*", null, null),
        ("deny-big", "deny", "deploy", "k8s://prod/**", "int(intent.parameters.replicas) > 10", null),
        ("allow-read", "allow", "read", "**", null, null),
        ("deny-contractors", "deny", "*", "**", "'contractors' in agent.claims.groups", null));

    public static TheoryData<string, string, string, string, bool, GovernanceReason, string, long?> Cases => new()
    {
        // action, resource, groups, parameters → allowed, reason, matched rules, lease
        { "deploy", "k8s://prod/web", "deployers", "{\"replicas\":3}", true, GovernanceReason.None, "allow-deploy,allow-deploy-short", 120 },
        { "deploy", "k8s://prod/api", "deployers", "{\"replicas\":3}", true, GovernanceReason.None, "allow-deploy", 600 },
        { "deploy", "k8s://prod/api", "viewers", "{\"replicas\":3}", false, GovernanceReason.NoMatchingRule, "", null },
        { "deploy", "k8s://prod/db/main", "deployers", "{\"replicas\":3}", false, GovernanceReason.PolicyDenied, "allow-deploy,deny-db", null },
        { "deploy", "k8s://prod/api", "deployers", "{\"replicas\":30}", false, GovernanceReason.PolicyDenied, "allow-deploy,deny-big", null },
        { "deploy", "k8s://prod/api", "deployers", "{}", false, GovernanceReason.PolicyError, "allow-deploy", null },
        { "deploy", "k8s://prod/db/main", "deployers", "{}", false, GovernanceReason.PolicyDenied, "allow-deploy,deny-db", null },
        { "restart", "k8s://prod/web", "viewers", "{}", true, GovernanceReason.None, "allow-deploy-short", 120 },
        { "read", "s3://anything/at/all", "viewers", "{}", true, GovernanceReason.None, "allow-read", null },
        { "read", "s3://x", "viewers,contractors", "{}", false, GovernanceReason.PolicyDenied, "allow-read,deny-contractors", null },
        { "delete", "k8s://prod/web", "deployers", "{}", false, GovernanceReason.NoMatchingRule, "", null },
        { "Deploy", "k8s://prod/web", "deployers", "{\"replicas\":1}", false, GovernanceReason.NoMatchingRule, "", null },
        { "deploy", "k8s://staging/web", "deployers", "{\"replicas\":1}", false, GovernanceReason.NoMatchingRule, "", null },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Deny_overrides_allow_errors_deny_and_no_allow_is_no_matching_rule(
        string action, string resource, string groups, string parameters, bool allowed, GovernanceReason reason, string matched, long? lease)
    {
        var policy = CompiledPolicy.Compile(Table);
        var input = Inputs.Make(action, resource, groups.Split(','), parameters);
        var d = policy.Decide(input);
        Assert.Equal(allowed, d.Allowed);
        Assert.Equal(reason, d.Reason);
        Assert.Equal(matched.Length == 0 ? [] : matched.Split(','), d.MatchedRules);
        Assert.Equal(lease, d.MaxLeaseSeconds);
        Assert.Equal(3, d.Epoch);
        Assert.Equal(policy.Version.Digest, d.Digest);
        Decisions.AssertSame(d, policy.DecideByFullScan(input));
    }

    [Fact]
    public void An_evaluation_error_denies_and_names_the_rule_even_when_an_allow_matched()
    {
        var policy = CompiledPolicy.Compile(Bundle(
            ("allow-all", "allow", "*", "**", null, null),
            ("allow-replicas", "allow", "deploy", "**", "intent.parameters.replicas < 5", null)));
        var d = policy.Decide(Inputs.Make(parametersJson: "{}"));
        Assert.False(d.Allowed);
        Assert.Equal(GovernanceReason.PolicyError, d.Reason);
        Assert.Equal(["allow-replicas"], d.FailedRules);
        Assert.Contains("allow-replicas", d.Detail, StringComparison.Ordinal);
        Assert.Contains("rules[1]", d.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_error_in_a_deny_rule_denies_rather_than_letting_the_allow_through()
    {
        var policy = CompiledPolicy.Compile(Bundle(
            ("allow-all", "allow", "*", "**", null, null),
            ("deny-unless-owner", "deny", "*", "**", "agent.claims.runtime != 'k8s'", null)));
        var d = policy.Decide(Inputs.Make());
        Assert.False(d.Allowed);
        Assert.Equal(GovernanceReason.PolicyError, d.Reason);
    }

    [Fact]
    public void A_dyn_condition_that_is_not_a_bool_at_run_time_denies()
    {
        var policy = CompiledPolicy.Compile(Bundle(("allow-flag", "allow", "*", "**", "intent.parameters.flag", null)));
        Assert.True(policy.Decide(Inputs.Make(parametersJson: "{\"flag\":true}")).Allowed);
        var d = policy.Decide(Inputs.Make(parametersJson: "{\"flag\":\"yes\"}"));
        Assert.Equal(GovernanceReason.PolicyError, d.Reason);
    }

    [Fact]
    public void A_condition_exceeding_its_cost_limit_denies()
    {
        var policy = CompiledPolicy.Compile(
            Bundle(("allow-loop", "allow", "*", "**", "intent.parameters.items.all(x, intent.parameters.items.all(y, x + y >= 0))", null)),
            new MeshBus.Policy.Cel.CelLimits { MaxComprehensionIterations = 100 });
        var items = "[" + string.Join(",", Enumerable.Range(0, 50)) + "]";
        var d = policy.Decide(Inputs.Make(parametersJson: "{\"items\":" + items + "}"));
        Assert.False(d.Allowed);
        Assert.Equal(GovernanceReason.PolicyError, d.Reason);
    }

    [Fact]
    public void Conditions_see_every_input_variable()
    {
        var policy = CompiledPolicy.Compile(Bundle(("allow-all-fields", "allow", "*", "**",
            "intent.action == 'deploy' && intent.resource.startsWith('k8s://') && intent.id != '' && intent.targetDomain == target.domain"
            + " && agent.subject.endsWith('/deployer') && agent.domain == origin.domain && agent.claims.owner == 'team-web'"
            + " && agent.claims.image_digest.startsWith('sha256:') && now - intent.issuedAt < duration('1m') && now > timestamp('2026-01-01T00:00:00Z')"
            + " && size(origin.attributes) == 0 && intent.maxDurationSeconds == 300", null)));
        var d = policy.Decide(Inputs.Make());
        Assert.True(d.Allowed, d.Detail);
    }

    [Fact]
    public void A_rule_that_does_not_compile_refuses_the_whole_bundle_naming_rule_and_position()
    {
        var json = Bundle(
            ("ok", "allow", "*", "**", "true", null),
            ("typo", "allow", "*", "**", "agent.subjekt == 'x'", null),
            ("not-bool", "deny", "*", "**", "intent.maxDurationSeconds + 1", null),
            ("syntax", "deny", "*", "**", "intent.action ==", null));
        var e = Assert.Throws<PolicyBundleException>(() => CompiledPolicy.Compile(json));
        Assert.Equal(3, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.RuleId == "typo" && x.RuleIndex == 1 && x.Line == 1 && x.Column > 1 && x.Kind == PolicyBundleErrorKind.Condition);
        Assert.Contains(e.Errors, x => x.RuleId == "not-bool" && x.RuleIndex == 2 && x.Message.Contains("boolean", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.RuleId == "syntax" && x.RuleIndex == 3);
        Assert.Contains("typo", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Undeclared_variables_are_refused_at_load()
    {
        var e = Assert.Throws<PolicyBundleException>(() => CompiledPolicy.Compile(Bundle(("x", "allow", "*", "**", "request.user == 'root'", null))));
        Assert.Equal("x", Assert.Single(e.Errors).RuleId);
    }

    [Fact]
    public void A_bundle_over_several_scopes_denies_when_any_denies_and_needs_an_allow_in_each()
    {
        var domain = CompiledPolicy.Compile(Table);
        var federation = CompiledPolicy.Compile(TestBundles.Edit(Bundle(
            ("federation-baseline", "allow", "*", "**", null, 300),
            ("no-cross-domain-db", "deny", "*", "k8s://prod/db/**", "origin.domain != target.domain", null)), o =>
        {
            o["scope"] = "federation";
            o["domain"] = "acme-globex";
        }));

        var allowed = PolicyEngine.Decide(Inputs.Make(parametersJson: "{\"replicas\":1}"), domain, federation);
        Assert.True(allowed.Allowed);
        Assert.Equal(["domain:allow-deploy", "domain:allow-deploy-short", "federation:federation-baseline"], allowed.MatchedRules);
        Assert.Equal(120, allowed.MaxLeaseSeconds);
        Assert.Equal([PolicyScope.Domain, PolicyScope.Federation], allowed.Policies.Select(p => p.Scope));

        var crossDb = PolicyEngine.Decide(Inputs.Make("read", "k8s://prod/db/x/y", origin: "globex.example/ops"), domain, federation);
        Assert.Equal(GovernanceReason.PolicyDenied, crossDb.Reason);
        Assert.Contains("federation:no-cross-domain-db", crossDb.MatchedRules);

        var federationOnlyDenies = CompiledPolicy.Compile(TestBundles.Edit(Bundle(("only-deny", "deny", "delete", "**", null, null)), o => o["scope"] = "federation"));
        var noAllow = PolicyEngine.Decide(Inputs.Make(parametersJson: "{\"replicas\":1}"), domain, federationOnlyDenies);
        Assert.False(noAllow.Allowed);
        Assert.Equal(GovernanceReason.NoMatchingRule, noAllow.Reason);
    }

    [Fact]
    public void A_deny_in_one_bundle_beats_an_error_in_another()
    {
        var erring = CompiledPolicy.Compile(Bundle(("err", "allow", "*", "**", "intent.parameters.nope == 1", null)));
        var denying = CompiledPolicy.Compile(TestBundles.Edit(Bundle(("no", "deny", "*", "**", null, null)), o => o["scope"] = "federation"));
        var d = PolicyEngine.Decide(Inputs.Make(), erring, denying);
        Assert.Equal(GovernanceReason.PolicyDenied, d.Reason);
        Assert.Equal(["domain:err"], d.FailedRules);
    }

    [Fact]
    public void No_bundle_at_all_is_a_deny()
    {
        Assert.False(PolicyEngine.Decide(Inputs.Make()).Allowed);
    }
}

public sealed class InputConversionTests
{
    private const string Bundle = """
        { "format": "meshbus-policy/v1", "scope": "domain", "domain": "d", "epoch": 1, "rules": [
          { "id": "allow-unless-many", "effect": "allow", "match": { "actions": ["*"], "resources": ["**"] },
            "condition": "!has(intent.parameters.replicas) || intent.parameters.replicas < 5" } ] }
        """;

    [Fact]
    public void Parameters_that_are_not_an_object_make_conditions_reading_them_fail_rather_than_see_nothing()
    {
        var policy = CompiledPolicy.Compile(Bundle);
        Assert.True(policy.Decide(Inputs.Make(parametersJson: "{}")).Allowed);
        var d = policy.Decide(Inputs.Make(parametersJson: "[{\"replicas\": 50}]"));
        Assert.False(d.Allowed);
        Assert.Equal(GovernanceReason.PolicyError, d.Reason);
    }

    [Fact]
    public void A_test_input_with_an_unknown_member_is_refused()
    {
        using var doc = System.Text.Json.JsonDocument.Parse("""
            { "intent": { "action": "a", "resource": "r", "resorce": "x" }, "agent": { "subject": "s", "domain": "d" }, "target": { "domain": "d" }, "now": "2026-11-26T12:00:00Z" }
            """);
        var e = Assert.Throws<FormatException>(() => PolicyInput.FromJson(doc.RootElement));
        Assert.Contains("resorce", e.Message, StringComparison.Ordinal);
    }
}
