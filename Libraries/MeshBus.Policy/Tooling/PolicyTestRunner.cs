using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Policy.Bundles;

namespace MeshBus.Policy.Tooling;

/// <summary>The result of one test case (or of a test file that could not run, with <see cref="Case"/> empty).</summary>
/// <param name="File">The test file, relative to the directory tested.</param>
/// <param name="Case">The case name.</param>
/// <param name="Passed">Whether the decision was the one expected.</param>
/// <param name="Message">Why it failed (or a summary of the decision when it passed).</param>
public sealed record PolicyTestResult(string File, string Case, bool Passed, string Message);

/// <summary>
/// Runs policy test files (<c>*.test.json</c>, docs/policy.md "Test files") like <c>opa test</c>: each names bundles
/// (paths relative to the test file) and cases with an input and the expected decision, reason, matched rules and lease.
/// Bundles are parsed and compiled as the store would, without checking signatures.
/// </summary>
public static class PolicyTestRunner
{
    /// <summary>The file name suffix of test files.</summary>
    public const string TestFileSuffix = ".test.json";

    /// <summary>Runs every test file under <paramref name="directory"/> (recursively, in ordinal path order).</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    public static IReadOnlyList<PolicyTestResult> RunDirectory(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"no such directory: {directory}");
        }

        var files = Directory.EnumerateFiles(directory, "*" + TestFileSuffix, SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .ToList();
        var results = new List<PolicyTestResult>();
        foreach (var f in files)
        {
            results.AddRange(RunFile(f, Path.GetRelativePath(directory, f)));
        }

        return results;
    }

    /// <summary>Runs one test file; <paramref name="displayName"/> names it in the results.</summary>
    public static IReadOnlyList<PolicyTestResult> RunFile(string path, string? displayName = null)
    {
        var name = displayName ?? path;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return [Broken(name, "a test file is a JSON object {bundles, cases}")];
            }

            foreach (var p in root.EnumerateObject())
            {
                if (p.Name is not ("bundles" or "cases" or "description"))
                {
                    return [Broken(name, $"unknown member '{p.Name}' (allowed: bundles, cases, description)")];
                }
            }

            if (!root.TryGetProperty("bundles", out var bundles) || bundles.ValueKind != JsonValueKind.Array || bundles.GetArrayLength() == 0)
            {
                return [Broken(name, "'bundles' must be a non-empty array of bundle file paths")];
            }

            var policies = new List<CompiledPolicy>();
            var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            foreach (var b in bundles.EnumerateArray())
            {
                if (b.ValueKind != JsonValueKind.String)
                {
                    return [Broken(name, "'bundles' must hold file paths")];
                }

                var bundlePath = Path.Combine(dir, b.GetString()!);
                try
                {
                    policies.Add(CompiledPolicy.Compile(File.ReadAllText(bundlePath)));
                }
                catch (PolicyBundleException e)
                {
                    return [Broken(name, $"bundle {b.GetString()} refused: " + string.Join("; ", e.Errors))];
                }
            }

            if (!root.TryGetProperty("cases", out var cases) || cases.ValueKind != JsonValueKind.Array || cases.GetArrayLength() == 0)
            {
                return [Broken(name, "'cases' must be a non-empty array")];
            }

            var results = new List<PolicyTestResult>();
            var index = 0;
            foreach (var c in cases.EnumerateArray())
            {
                results.Add(RunCase(name, index++, c, policies));
            }

            return results;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return [Broken(name, e.Message)];
        }
    }

    private static PolicyTestResult RunCase(string file, int index, JsonElement c, List<CompiledPolicy> policies)
    {
        var caseName = $"cases[{index}]";
        try
        {
            if (c.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("a case is an object {name, input, expect}");
            }

            foreach (var p in c.EnumerateObject())
            {
                if (p.Name is not ("name" or "input" or "expect"))
                {
                    throw new FormatException($"unknown member '{p.Name}' (allowed: name, input, expect)");
                }
            }

            if (c.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String)
            {
                caseName = n.GetString()!;
            }

            if (!c.TryGetProperty("input", out var inputJson))
            {
                throw new FormatException("missing 'input'");
            }

            if (!c.TryGetProperty("expect", out var expect) || expect.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("missing 'expect' object");
            }

            var input = PolicyInput.FromJson(inputJson);
            var decision = PolicyEngine.Decide(input, policies);
            var problems = Compare(expect, decision);
            var summary = decision.Allowed ? "allow" : $"deny {decision.Reason}";
            return problems.Count == 0
                ? new PolicyTestResult(file, caseName, true, summary)
                : new PolicyTestResult(file, caseName, false, string.Join("; ", problems) + $" (decision: {summary}, matched [{string.Join(", ", decision.MatchedRules)}]; {decision.Detail})");
        }
        catch (FormatException e)
        {
            return new PolicyTestResult(file, caseName, false, "invalid case: " + e.Message);
        }
    }

    private static List<string> Compare(JsonElement expect, PolicyDecision decision)
    {
        var problems = new List<string>();
        foreach (var p in expect.EnumerateObject())
        {
            if (p.Name is not ("decision" or "reason" or "matchedRules" or "maxLeaseSeconds"))
            {
                throw new FormatException($"expect: unknown member '{p.Name}' (allowed: decision, reason, matchedRules, maxLeaseSeconds)");
            }
        }

        if (!expect.TryGetProperty("decision", out var d) || d.GetString() is not ("allow" or "deny"))
        {
            throw new FormatException("expect.decision must be \"allow\" or \"deny\"");
        }

        var allow = d.GetString() == "allow";
        if (allow != decision.Allowed)
        {
            problems.Add($"expected {d.GetString()}");
        }

        if (expect.TryGetProperty("reason", out var r))
        {
            if (r.ValueKind != JsonValueKind.String || !Enum.TryParse<GovernanceReason>(r.GetString(), ignoreCase: false, out var reason) || !Enum.IsDefined(reason))
            {
                throw new FormatException($"expect.reason must be a GovernanceReason name such as PolicyDenied, NoMatchingRule or PolicyError");
            }

            if (reason != decision.Reason)
            {
                problems.Add($"expected reason {reason}");
            }
        }

        if (expect.TryGetProperty("matchedRules", out var m))
        {
            if (m.ValueKind != JsonValueKind.Array || m.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            {
                throw new FormatException("expect.matchedRules must be an array of rule ids");
            }

            var expected = m.EnumerateArray().Select(e => e.GetString()!).ToList();
            if (!expected.SequenceEqual(decision.MatchedRules, StringComparer.Ordinal))
            {
                problems.Add($"expected matched rules [{string.Join(", ", expected)}]");
            }
        }

        if (expect.TryGetProperty("maxLeaseSeconds", out var l))
        {
            long? expected = l.ValueKind == JsonValueKind.Null ? null
                : l.ValueKind == JsonValueKind.Number && l.TryGetInt64(out var v) ? v
                : throw new FormatException("expect.maxLeaseSeconds must be an integer or null");
            if (expected != decision.MaxLeaseSeconds)
            {
                problems.Add($"expected maxLeaseSeconds {expected?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "null"}, got {decision.MaxLeaseSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "null"}");
            }
        }

        return problems;
    }

    private static PolicyTestResult Broken(string file, string message) => new(file, "", false, message);
}
