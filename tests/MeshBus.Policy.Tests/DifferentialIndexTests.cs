using System.Text.Json.Nodes;
using MeshBus.Contracts;
using Xunit;

namespace MeshBus.Policy.Tests;

/// <summary>
/// The selector index must never change a decision: over many seeded random bundles and intents (denies, errors and
/// wildcards included), the indexed decision equals the decision found by checking every rule.
/// </summary>
public sealed class DifferentialIndexTests
{
    private static readonly string[] Actions = ["deploy", "read", "write", "delete", "restart", "scale"];
    private static readonly string[] Schemes = ["k8s://", "s3://"];
    private static readonly string[] Segments = ["prod", "staging", "web", "db", "api", "x"];

    private static readonly string?[] Conditions =
    [
        null,
        "true",
        "false",
        "'deployers' in agent.claims.groups",
        "'contractors' in agent.claims.groups",
        "intent.parameters.replicas > 3",
        "has(intent.parameters.replicas) && intent.parameters.replicas >= 2",
        "intent.resource.endsWith('/db')",
        "origin.domain != target.domain",
        "intent.maxDurationSeconds <= 600",
        "agent.claims.owner == 'team-web'",
        "100 / (intent.maxDurationSeconds - 300) > 0",
        "intent.parameters.flag",
    ];

    private static string Pattern(Random rng)
    {
        var parts = new List<string>();
        var n = rng.Next(1, 4);
        for (var i = 0; i < n; i++)
        {
            parts.Add(rng.Next(6) switch
            {
                0 => "*",
                1 => "**",
                2 => Segments[rng.Next(Segments.Length)] + "*",
                _ => Segments[rng.Next(Segments.Length)],
            });
        }

        return rng.Next(10) == 0 ? "**" : Schemes[rng.Next(Schemes.Length)] + string.Join("/", parts);
    }

    private static string Resource(Random rng) =>
        Schemes[rng.Next(Schemes.Length)] + string.Join("/", Enumerable.Range(0, rng.Next(1, 5)).Select(_ => Segments[rng.Next(Segments.Length)]));

    private static string RandomBundle(Random rng)
    {
        var rules = new JsonArray();
        var count = rng.Next(1, 60);
        for (var i = 0; i < count; i++)
        {
            var actions = rng.Next(8) == 0
                ? new JsonArray("*")
                : new JsonArray([.. Actions.OrderBy(_ => rng.Next()).Take(rng.Next(1, 3)).Select(a => (JsonNode)a)]);
            var resources = new JsonArray([.. Enumerable.Range(0, rng.Next(1, 3)).Select(_ => (JsonNode)Pattern(rng))]);
            var deny = rng.Next(10) < 3;
            var rule = new JsonObject
            {
                ["id"] = $"r{i}",
                ["effect"] = deny ? "deny" : "allow",
                ["match"] = new JsonObject { ["actions"] = actions, ["resources"] = resources },
            };
            if (Conditions[rng.Next(Conditions.Length)] is { } c)
            {
                rule["condition"] = c;
            }

            if (!deny && rng.Next(2) == 0)
            {
                rule["obligations"] = new JsonObject { ["maxLeaseSeconds"] = rng.Next(1, 10) * 60 };
            }

            rules.Add(rule);
        }

        return new JsonObject
        {
            ["format"] = "meshbus-policy/v1",
            ["scope"] = "domain",
            ["domain"] = "acme.example/prod",
            ["epoch"] = rng.Next(1, 1000),
            ["rules"] = rules,
        }.ToJsonString();
    }

    private static PolicyInput RandomInput(Random rng)
    {
        var groups = new[] { "deployers", "contractors", "viewers" }.Where(_ => rng.Next(2) == 0).ToArray();
        var parameters = rng.Next(4) switch
        {
            0 => "{}",
            1 => "{\"replicas\":" + rng.Next(0, 8) + "}",
            2 => "{\"flag\":" + (rng.Next(2) == 0 ? "true" : "\"yes\"") + "}",
            _ => "{\"replicas\":" + rng.Next(0, 8) + ",\"flag\":false}",
        };
        var action = rng.Next(12) == 0 ? "unknown-action" : Actions[rng.Next(Actions.Length)];
        return Inputs.Make(
            action,
            Resource(rng),
            groups,
            parameters,
            origin: rng.Next(2) == 0 ? "acme.example/prod" : "globex.example/ops",
            maxDurationSeconds: new long[] { 60, 300, 900 }[rng.Next(3)]);
    }

    [Fact]
    public void The_indexed_decision_equals_the_full_scan_over_random_bundles_and_intents()
    {
        var rng = new Random(20261126);
        var reasons = new Dictionary<GovernanceReason, int>();
        var decisions = 0;
        for (var b = 0; b < 120; b++)
        {
            var policy = CompiledPolicy.Compile(RandomBundle(rng));
            for (var i = 0; i < 80; i++)
            {
                var input = RandomInput(rng);
                var indexed = policy.Decide(input);
                var scanned = policy.DecideByFullScan(input);
                Decisions.AssertSame(scanned, indexed);
                reasons[indexed.Reason] = reasons.GetValueOrDefault(indexed.Reason) + 1;
                decisions++;
            }
        }

        // The generator must exercise every outcome, or the comparison proves little.
        Assert.Equal(9_600, decisions);
        foreach (var r in new[] { GovernanceReason.None, GovernanceReason.PolicyDenied, GovernanceReason.NoMatchingRule, GovernanceReason.PolicyError })
        {
            Assert.True(reasons.GetValueOrDefault(r) > 200, $"only {reasons.GetValueOrDefault(r)} decisions with reason {r}");
        }
    }

    [Fact]
    public void The_full_scan_oracle_is_not_the_index_itself()
    {
        // Guard against a refactoring that makes both paths share the index: a selector the index cannot know about
        // (an action never declared) must still be matched by the scan through the rule's own selector.
        var policy = CompiledPolicy.Compile(TestBundles.Simple);
        var input = Inputs.Make("anything", "k8s://prod/db/x");
        Decisions.AssertSame(policy.DecideByFullScan(input), policy.Decide(input));
        Assert.Equal(["deny-db"], policy.Decide(input).MatchedRules);
    }
}
