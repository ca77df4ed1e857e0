using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Policy.Tests.Cel;

public sealed class CelConformanceTests(ITestOutputHelper output)
{
    private static readonly string[] TargetFiles =
    [
        "basic", "comparisons", "logic", "macros", "string", "lists", "fields", "conversions", "parse", "plumbing",
        "integer_math", "fp_math", "timestamps",
    ];

    public static IEnumerable<object[]> RunnableCases =>
        Conformance.All.Where(c => c.SkipReason is null).Select(c => new object[] { c.File, c.Section, c.Name });

    [Theory]
    [MemberData(nameof(RunnableCases))]
    public void Conformance_test_passes(string file, string section, string name)
    {
        var c = Conformance.All.Single(x => x.File == file && x.Section == section && x.Name == name);
        var failure = Conformance.Run(c);
        Assert.True(failure is null, $"{file}/{section}/{name}: {c.Test.String("expr")} -> {failure}");
    }

    [Fact]
    public void Every_target_conformance_file_is_present_and_read()
    {
        foreach (var file in TargetFiles)
        {
            Assert.Contains(Conformance.All, c => c.File == file);
        }

        Assert.True(Conformance.All.Count > 1000, $"only {Conformance.All.Count} tests read");
    }

    [Fact]
    public void Skips_are_only_for_features_outside_the_engine()
    {
        var allowed = new[]
        {
            Conformance.ProtobufMessages, Conformance.Containers, Conformance.Unknowns, Conformance.FunctionDecls,
            Conformance.StringsExtension, Conformance.TwoVariableComprehensions, Conformance.OptionalTypes,
        };
        Assert.All(Conformance.All.Where(c => c.SkipReason is not null), c => Assert.Contains(c.SkipReason, allowed));

        // The per-file table of docs/cel.md.
        output.WriteLine("| file | tests | passed | failed | skipped (reason: count) |");
        output.WriteLine("|---|---:|---:|---:|---|");
        foreach (var group in Conformance.All.GroupBy(c => c.File))
        {
            var run = group.Where(c => c.SkipReason is null).ToList();
            var failed = run.Count(c => Conformance.Run(c) is not null);
            var skipped = string.Join("; ", group.Where(c => c.SkipReason is not null).GroupBy(c => c.SkipReason).Select(g => $"{g.Key}: {g.Count()}"));
            output.WriteLine($"| {group.Key} | {group.Count()} | {run.Count - failed} | {failed} | {skipped} |");
        }
    }
}
