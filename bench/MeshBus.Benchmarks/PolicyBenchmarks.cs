using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using MeshBus.Policy;

namespace MeshBus.Benchmarks;

/// <summary>
/// Decision time of a compiled bundle of 10, 100 and 1,000 rules (docs/performance.md, "Policy decisions"). Each
/// iteration is ONE decision (invocation count 1, no forced GC between iterations), so the median and the p99 are per
/// decision, GC pauses included; BenchmarkDotNet's per-iteration overhead is included too, which only overstates.
/// Shapes: <c>selective</c> rules spread over 10 actions and 91 resource prefixes (the index leaves a few candidates);
/// <c>all-match</c> every rule's selector matches every intent (the index cannot help: every condition runs).
/// Run: <c>dotnet run -c Release --project bench/MeshBus.Benchmarks -- --filter '*PolicyBenchmarks*'</c>.
/// </summary>
[Config(typeof(LatencyConfig))]
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private static readonly string[] Actions = ["deploy", "read", "write", "delete", "scale", "restart", "exec", "backup", "restore", "rotate"];

    private static readonly string[] Conditions =
    [
        "'deployers' in agent.claims.groups && intent.maxDurationSeconds <= 1800",
        "agent.claims.owner == 'team-web' && agent.claims.image_digest.startsWith('sha256:')",
        "has(intent.parameters.replicas) && int(intent.parameters.replicas) > 20",
        "now - intent.issuedAt > duration('5m')",
        "origin.domain != target.domain && intent.maxDurationSeconds > 600",
    ];

    private CompiledPolicy _policy = null!;
    private PolicyInput[] _inputs = [];
    private int _next;

    /// <summary>Number of rules in the bundle.</summary>
    [Params(10, 100, 1000)]
    public int Rules { get; set; }

    /// <summary>How selective the selectors are.</summary>
    [Params("selective", "all-match")]
    public string Shape { get; set; } = "selective";

    /// <summary>Builds the bundle and 64 intents (seeded).</summary>
    [GlobalSetup]
    public void Setup()
    {
        _policy = CompiledPolicy.Compile(Bundle(Rules, Shape == "all-match"));
        var rng = new Random(42);
        var now = new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
        _inputs = [.. Enumerable.Range(0, 64).Select(_ => Input(rng, now))];
    }

    /// <summary>One decision, input conversion included (what the Authorize worker pays).</summary>
    [Benchmark]
    public PolicyDecision Decide()
    {
        var input = _inputs[_next++ & 63];
        return _policy.Decide(input);
    }

    internal static string Bundle(int count, bool allMatch)
    {
        var rules = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            var deny = i % 5 == 0;
            var actions = allMatch || i % 25 == 24 ? new JsonArray("*") : new JsonArray(Actions[i % Actions.Length]);
            var resource = allMatch ? "k8s://**" : $"k8s://cluster-{i % 7}/ns-{i % 13}/**";
            var rule = new JsonObject
            {
                ["id"] = "rule-" + i.ToString(CultureInfo.InvariantCulture),
                ["effect"] = deny ? "deny" : "allow",
                ["match"] = new JsonObject { ["actions"] = actions, ["resources"] = new JsonArray(resource) },
                ["condition"] = Conditions[i % Conditions.Length],
            };
            if (!deny)
            {
                rule["obligations"] = new JsonObject { ["maxLeaseSeconds"] = 300 + i };
            }

            rules.Add(rule);
        }

        return new JsonObject
        {
            ["format"] = "meshbus-policy/v1",
            ["scope"] = "domain",
            ["domain"] = "acme.example/prod",
            ["epoch"] = 1,
            ["rules"] = rules,
        }.ToJsonString();
    }

    internal static PolicyInput Input(Random rng, DateTimeOffset now)
    {
        var r = rng.Next(1000);
        var claims = new Dictionary<string, JsonElement>
        {
            ["groups"] = JsonSerializer.SerializeToElement(r % 2 == 0 ? new[] { "deployers", "sre" } : ["viewers"]),
            ["owner"] = JsonSerializer.SerializeToElement(r % 3 == 0 ? "team-web" : "team-data"),
            ["image_digest"] = JsonSerializer.SerializeToElement("sha256:9f86d081884c7d65"),
        };
        var parameters = JsonDocument.Parse(r % 4 == 0 ? "{\"replicas\": 30}" : "{\"replicas\": 3, \"image\": \"web:1.2\"}").RootElement.Clone();
        var resource = $"k8s://cluster-{r % 7}/ns-{r % 13}/web";
        return new PolicyInput(
            new PolicyIntent(Guid.NewGuid().ToString(), Actions[r % Actions.Length], resource, parameters, r % 2 == 0 ? 600 : 3600, "acme.example/prod", now.AddSeconds(-(r % 400))),
            new PolicyAgent("acme.example/prod/agents/a" + r.ToString(CultureInfo.InvariantCulture), "acme.example/prod", claims),
            new PolicyOrigin(r % 5 == 0 ? "globex.example/ops" : "acme.example/prod"),
            new PolicyTarget("acme.example/prod"),
            now);
    }

    private sealed class LatencyConfig : ManualConfig
    {
        public LatencyConfig()
        {
            AddJob(Job.Default
                .WithStrategy(RunStrategy.Monitoring)
                .WithInvocationCount(1)
                .WithUnrollFactor(1)
                .WithWarmupCount(2000)
                .WithIterationCount(20000)
                .WithGcForce(false)
                // In process: generating and building a separate benchmark project takes longer than the default
                // build timeout on a shared 2-core machine.
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithId("per-decision"));
            AddColumn(StatisticColumn.Median, StatisticColumn.P95, new P99Column());
        }
    }

    private sealed class P99Column : IColumn
    {
        public string Id => "P99";

        public string ColumnName => "P99";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Statistics;

        public int PriorityInCategory => 10;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Time;

        public string Legend => "99th percentile of one decision";

        public bool IsAvailable(Summary summary) => true;

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var s = summary[benchmarkCase]?.ResultStatistics;
            return s is null ? "NA" : (s.Percentiles.Percentile(99) / 1000.0).ToString("0.00", CultureInfo.InvariantCulture) + " μs";
        }
    }
}
