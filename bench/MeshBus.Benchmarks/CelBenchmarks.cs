using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using MeshBus.Policy.Cel;

namespace MeshBus.Benchmarks;

/// <summary>
/// The CEL engine against a hand-written C# delegate for the same conditions over the same input (JSON parsed into
/// dictionaries for the delegate, into CEL values for the engine), plus the compile time of each rule.
/// Run: <c>dotnet run -c Release --project bench/MeshBus.Benchmarks -- --filter '*CelBenchmarks*'</c>.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class CelBenchmarks
{
    public const string ThreeClause = "intent.action == 'read' && agent.level >= 3 && intent.resource.startsWith('docs/')";

    public const string TenClause = """
        intent.action in ['read', 'list'] && agent.level >= 2 && agent.org == 'acme'
        && intent.resource.startsWith('docs/') && !intent.resource.endsWith('.secret')
        && agent.tags.exists(t, t == 'tag-19') && size(intent.resource) < 200
        && origin.domain == 'mesh.local' && target.env != 'prod' && agent.id != 'blocked'
        """;

    public const string TimestampRule = "now < timestamp('2030-01-01T00:00:00Z') && now - agent.issued < duration('1h')";

    private const string InputJson = """
        {
          "intent": {"action": "read", "resource": "docs/plan.md"},
          "agent": {"id": "a-7", "level": 3, "org": "acme",
                    "tags": ["tag-0","tag-1","tag-2","tag-3","tag-4","tag-5","tag-6","tag-7","tag-8","tag-9",
                             "tag-10","tag-11","tag-12","tag-13","tag-14","tag-15","tag-16","tag-17","tag-18","tag-19"]},
          "origin": {"domain": "mesh.local"},
          "target": {"env": "staging"}
        }
        """;

    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Issued = Now.AddMinutes(-10);
    private static readonly DateTimeOffset Expiry = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private CelEnvironment _env = null!;
    private CelProgram _three = null!;
    private CelProgram _ten = null!;
    private CelProgram _timestamp = null!;
    private CelActivation _activation = null!;
    private Dictionary<string, object> _host = null!;
    private Func<Dictionary<string, object>, bool> _threeDelegate = null!;
    private Func<Dictionary<string, object>, bool> _tenDelegate = null!;
    private Func<Dictionary<string, object>, bool> _timestampDelegate = null!;

    [GlobalSetup]
    public void Setup()
    {
        var vars = new Dictionary<string, CelType>
        {
            ["intent"] = CelType.Dyn,
            ["agent"] = CelType.Dyn,
            ["origin"] = CelType.Dyn,
            ["target"] = CelType.Dyn,
            ["now"] = CelType.Timestamp,
        };
        _env = CelEnvironment.Create(vars);
        _three = _env.Compile(ThreeClause);
        _ten = _env.Compile(TenClause);
        _timestamp = _env.Compile(TimestampRule);

        using var doc = JsonDocument.Parse(InputJson);
        var values = new Dictionary<string, CelValue> { ["now"] = CelValue.Of(Now) };
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            values[p.Name] = CelValue.FromJson(p.Value);
        }

        var agent = (CelMap)values["agent"];
        var withIssued = agent.Entries.ToDictionary(e => ((CelString)e.Key).Value, e => e.Value);
        withIssued["issued"] = CelValue.Of(Issued);
        values["agent"] = CelValue.Map(withIssued);
        _activation = CelActivation.Create(values);

        _host = (Dictionary<string, object>)ToHost(doc.RootElement);
        ((Dictionary<string, object>)_host["agent"])["issued"] = Issued;
        _host["now"] = Now;

        _threeDelegate = h =>
        {
            var intent = (Dictionary<string, object>)h["intent"];
            var agent = (Dictionary<string, object>)h["agent"];
            return (string)intent["action"] == "read" && (long)agent["level"] >= 3
                && ((string)intent["resource"]).StartsWith("docs/", StringComparison.Ordinal);
        };
        _tenDelegate = h =>
        {
            var intent = (Dictionary<string, object>)h["intent"];
            var agent = (Dictionary<string, object>)h["agent"];
            var action = (string)intent["action"];
            var resource = (string)intent["resource"];
            return (action == "read" || action == "list") && (long)agent["level"] >= 2 && (string)agent["org"] == "acme"
                && resource.StartsWith("docs/", StringComparison.Ordinal) && !resource.EndsWith(".secret", StringComparison.Ordinal)
                && ((List<object>)agent["tags"]).Exists(t => (string)t == "tag-19") && resource.Length < 200
                && (string)((Dictionary<string, object>)h["origin"])["domain"] == "mesh.local"
                && (string)((Dictionary<string, object>)h["target"])["env"] != "prod" && (string)agent["id"] != "blocked";
        };
        _timestampDelegate = h =>
        {
            var now = (DateTimeOffset)h["now"];
            return now < Expiry && now - (DateTimeOffset)((Dictionary<string, object>)h["agent"])["issued"] < TimeSpan.FromHours(1);
        };

        if (!_three.Evaluate(_activation).IsTrue || !_ten.Evaluate(_activation).IsTrue || !_timestamp.Evaluate(_activation).IsTrue
            || !_threeDelegate(_host) || !_tenDelegate(_host) || !_timestampDelegate(_host))
        {
            throw new InvalidOperationException("benchmark conditions must hold on the input");
        }
    }

    private static object ToHost(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => ToHost(p.Value)),
        JsonValueKind.Array => e.EnumerateArray().Select(ToHost).ToList(),
        JsonValueKind.String => e.GetString()!,
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null!,
    };

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("3-clause")]
    public bool ThreeClauseDelegate() => _threeDelegate(_host);

    [Benchmark]
    [BenchmarkCategory("3-clause")]
    public bool ThreeClauseCel() => _three.Evaluate(_activation).IsTrue;

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("10-clause+exists(20)")]
    public bool TenClauseDelegate() => _tenDelegate(_host);

    [Benchmark]
    [BenchmarkCategory("10-clause+exists(20)")]
    public bool TenClauseCel() => _ten.Evaluate(_activation).IsTrue;

    [Benchmark(Baseline = true)]
    [BenchmarkCategory("timestamp")]
    public bool TimestampDelegate() => _timestampDelegate(_host);

    [Benchmark]
    [BenchmarkCategory("timestamp")]
    public bool TimestampCel() => _timestamp.Evaluate(_activation).IsTrue;

    [Benchmark]
    [BenchmarkCategory("compile")]
    public CelProgram CompileThreeClause() => _env.Compile(ThreeClause);

    [Benchmark]
    [BenchmarkCategory("compile")]
    public CelProgram CompileTenClause() => _env.Compile(TenClause);

    [Benchmark]
    [BenchmarkCategory("compile")]
    public CelProgram CompileTimestamp() => _env.Compile(TimestampRule);
}
