using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class PolicyCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("meshbus-policy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => TestCli.Run(args);

    private static string ExamplesDirectory()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "docs", "examples");
            if (Directory.Exists(candidate) && File.Exists(Path.Combine(d.FullName, "MeshBus.sln")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("docs/examples not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task The_examples_pass_meshbus_policy_test()
    {
        var (code, output, _) = await Run("policy", "test", ExamplesDirectory());
        Assert.True(code == 0, output);
        Assert.Contains("PASS acme-prod.test.json: a deployer deploys the web tier", output, StringComparison.Ordinal);
        Assert.DoesNotContain("FAIL", output, StringComparison.Ordinal);
        Assert.Matches(@"PASS: (\d+)/\1", output);
    }

    [Fact]
    public async Task Every_example_bundle_lints_clean()
    {
        foreach (var file in Directory.GetFiles(ExamplesDirectory(), "*.policy.json"))
        {
            var (code, output, _) = await Run("policy", "lint", file);
            Assert.True(code == 0, output);
            Assert.Contains(": ok (", output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Lint_lists_every_problem_and_exits_1()
    {
        var file = Path.Combine(_dir, "bad.policy.json");
        File.WriteAllText(file, TestBundles.Edit(TestBundles.Simple, o =>
        {
            o["rules"]![0]!["condition"] = "agent.claims.groups.exists(g, g == 'x') &&";
            o["rules"]![1]!["condition"] = "agent.subjekt == 'x'";
            o["rules"]![1]!["match"]!["resources"] = new System.Text.Json.Nodes.JsonArray("k8s://***");
            o["epoch"] = "seven";
        }));
        var (code, output, _) = await Run("policy", "lint", file);
        Assert.Equal(1, code);
        Assert.Contains("epoch", output, StringComparison.Ordinal);
        Assert.Contains("rules[0].condition (rule 'allow-deploy')", output, StringComparison.Ordinal);
        Assert.Contains("rules[1].condition (rule 'deny-db') 1:", output, StringComparison.Ordinal);
        Assert.Contains("rules[1].match.resources[0]", output, StringComparison.Ordinal);
        Assert.Contains("4 problems", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lint_of_an_unreadable_file_exits_2()
    {
        var (code, _, err) = await Run("policy", "lint", Path.Combine(_dir, "missing.json"));
        Assert.Equal(2, code);
        Assert.Contains("cannot read", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lint_of_something_that_is_not_json_exits_1_with_the_position()
    {
        var file = Path.Combine(_dir, "x.json");
        File.WriteAllText(file, "{\n  \"format\": }");
        var (code, output, _) = await Run("policy", "lint", file);
        Assert.Equal(1, code);
        Assert.Contains("syntax", output, StringComparison.Ordinal);
        Assert.Contains(" 2:", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_case_is_reported_and_exits_1()
    {
        File.WriteAllText(Path.Combine(_dir, "p.policy.json"), TestBundles.Simple);
        File.WriteAllText(Path.Combine(_dir, "p.test.json"), """
            {
              "bundles": ["p.policy.json"],
              "cases": [
                { "name": "good", "input": { "intent": { "action": "deploy", "resource": "k8s://prod/db/x" }, "agent": { "subject": "a", "domain": "acme.example/prod" }, "target": { "domain": "acme.example/prod" }, "now": "2026-11-26T12:00:00Z" },
                  "expect": { "decision": "deny", "reason": "PolicyDenied", "matchedRules": ["deny-db"] } },
                { "name": "wrong expectation", "input": { "intent": { "action": "read", "resource": "k8s://prod/db/x" }, "agent": { "subject": "a", "domain": "acme.example/prod" }, "target": { "domain": "acme.example/prod" }, "now": "2026-11-26T12:00:00Z" },
                  "expect": { "decision": "allow", "matchedRules": ["allow-deploy"] } }
              ]
            }
            """);
        var (code, output, _) = await Run("policy", "test", _dir);
        Assert.Equal(1, code);
        Assert.Contains("PASS p.test.json: good", output, StringComparison.Ordinal);
        Assert.Contains("FAIL p.test.json: wrong expectation: expected allow; expected matched rules [allow-deploy]", output, StringComparison.Ordinal);
        Assert.Contains("FAIL: 1/2 failed", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_test_file_naming_an_invalid_bundle_fails()
    {
        File.WriteAllText(Path.Combine(_dir, "p.policy.json"), TestBundles.Simple.Replace("\"deny\"", "\"maybe\"", StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(_dir, "p.test.json"), """{ "bundles": ["p.policy.json"], "cases": [] }""");
        var (code, output, _) = await Run("policy", "test", _dir);
        Assert.Equal(1, code);
        Assert.Contains("bundle p.policy.json refused", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_directory_without_tests_fails_and_a_missing_one_is_a_usage_error()
    {
        Assert.Equal(1, (await Run("policy", "test", _dir)).Code);
        Assert.Equal(2, (await Run("policy", "test", Path.Combine(_dir, "nope"))).Code);
    }
}
