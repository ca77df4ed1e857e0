using System.Text.Json;

namespace MeshBus.Policy.Tests;

/// <summary>Builds inputs for decisions.</summary>
internal static class Inputs
{
    public static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    public static PolicyInput Make(
        string action = "deploy",
        string resource = "k8s://prod/web",
        string[]? groups = null,
        string parametersJson = "{}",
        string origin = "acme.example/prod",
        string target = "acme.example/prod",
        long maxDurationSeconds = 300)
    {
        var claims = new Dictionary<string, JsonElement>
        {
            ["groups"] = JsonSerializer.SerializeToElement(groups ?? ["deployers"]),
            ["image_digest"] = JsonSerializer.SerializeToElement("sha256:abc"),
            ["owner"] = JsonSerializer.SerializeToElement("team-web"),
        };
        return new PolicyInput(
            new PolicyIntent("6f0e8c52-0000-4000-8000-000000000001", action, resource, JsonDocument.Parse(parametersJson).RootElement.Clone(), maxDurationSeconds, target, Now.AddSeconds(-5)),
            new PolicyAgent(origin + "/agents/deployer", origin, claims),
            new PolicyOrigin(origin),
            new PolicyTarget(target),
            Now);
    }
}

/// <summary>Structural comparison of decisions (records compare lists by reference).</summary>
internal static class Decisions
{
    public static string Describe(PolicyDecision d) =>
        $"{d.Allowed} {d.Reason} [{string.Join(",", d.MatchedRules)}] failed [{string.Join(",", d.FailedRules)}] lease {d.MaxLeaseSeconds} "
        + $"{string.Join(",", d.Policies)} | {d.Detail}";

    public static void AssertSame(PolicyDecision expected, PolicyDecision actual) =>
        Xunit.Assert.Equal(Describe(expected), Describe(actual));
}
