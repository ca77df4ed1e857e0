using System.Diagnostics;
using System.Text.Json;
using MeshBus.Policy.Cel;
using Xunit;

namespace MeshBus.Policy.Tests.Cel;

public sealed class CelEngineTests
{
    private static readonly CelType Intent = CelType.Object("Intent", new Dictionary<string, CelType>
    {
        ["action"] = CelType.String,
        ["resource"] = CelType.String,
        ["amount"] = CelType.Int,
        ["tags"] = CelType.List(CelType.String),
    });

    private static CelValue Eval(string expr, Dictionary<string, CelValue>? values = null, CelLimits? limits = null)
    {
        values ??= [];
        var env = CelEnvironment.Create(values.ToDictionary(kv => kv.Key, _ => CelType.Dyn), limits);
        return env.Compile(expr).Evaluate(CelActivation.Create(values));
    }

    private static CelValue Json(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return CelValue.FromJson(doc.RootElement);
    }

    [Fact]
    public void Integer_keyed_deny_list_from_the_host_finds_the_uid()
    {
        var blocked = CelValue.Map(new[] { KeyValuePair.Create<CelValue, CelValue>(CelValue.Of(42L), CelValue.True) });

        Assert.True(Eval("uid in blocked", new() { ["uid"] = CelValue.Of(42L), ["blocked"] = blocked }).IsTrue);
        Assert.True(Eval("uid in blocked", new() { ["uid"] = CelValue.Of(42UL), ["blocked"] = blocked }).IsTrue);
        Assert.True(Eval("uid in blocked", new() { ["uid"] = Json("42"), ["blocked"] = Json("[7, 42]") }).IsTrue);
    }

    [Fact]
    public void String_key_never_equals_an_int_key()
    {
        Assert.Same(CelValue.False, Eval("k in {1: 'a'}", new() { ["k"] = CelValue.Of("1") }));
        Assert.Same(CelValue.False, Eval("k in {'1': 'a'}", new() { ["k"] = CelValue.Of(1L) }));
        Assert.Same(CelValue.False, Eval("k in m", new() { ["k"] = CelValue.Of("1"), ["m"] = Json("[1]") }));
        Assert.True(Eval("{1: 'a'}[k]", new() { ["k"] = CelValue.Of("1") }).IsError);

        // With known types the checker rejects the comparison outright.
        Assert.Throws<CelCompileException>(() => Eval("'1' in {1: 'a'}"));
        Assert.Throws<CelCompileException>(() => Eval("{1: 'a'}['1']"));
    }

    [Fact]
    public void Comprehension_over_a_list_of_maps_sees_the_outer_binding()
    {
        var values = new Dictionary<string, CelValue>
        {
            ["grants"] = Json("""[{"agent": "a1", "scope": "read"}, {"agent": "a2", "scope": "write"}]"""),
            ["who"] = Json("\"a2\""),
        };

        Assert.True(Eval("grants.exists(g, g.agent == who && g.scope == 'write')", values).IsTrue);
        Assert.True(Eval("[1, 2].all(x, [3, 4].all(y, x < y))").IsTrue);
        Assert.True(Eval("[1, 2].exists(x, [0, 1].exists(x, x == 0))").IsTrue);
    }

    [Fact]
    public void Errors_are_values_and_logical_operators_absorb_them_commutatively()
    {
        var values = new Dictionary<string, CelValue> { ["m"] = Json("{}") };

        Assert.True(Eval("m.missing", values).IsError);
        Assert.Same(CelValue.True, Eval("m.missing || true", values));
        Assert.Same(CelValue.True, Eval("true || m.missing", values));
        Assert.Same(CelValue.False, Eval("m.missing && false", values));
        Assert.Same(CelValue.False, Eval("false && m.missing", values));
        Assert.True(Eval("m.missing || false", values).IsError);
        Assert.True(Eval("true && m.missing", values).IsError);
        Assert.True(Eval("!m.missing", values).IsError);
        Assert.True(Eval("!x", new() { ["x"] = CelValue.Null }).IsError);
        Assert.False(CelEnvironment.Create(new Dictionary<string, CelType> { ["m"] = CelType.Dyn })
            .Compile("m.missing").EvaluateCondition(CelActivation.Create(values)));
    }

    [Fact]
    public void Not_of_null_is_rejected_by_the_checker()
    {
        var e = Assert.Throws<CelCompileException>(() => Eval("!null"));
        Assert.Contains("!_", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_field_of_a_declared_object_is_a_compile_error_with_its_position()
    {
        var env = CelEnvironment.Create(new Dictionary<string, CelType> { ["intent"] = Intent });

        var e = Assert.Throws<CelCompileException>(() => env.Compile("intent.action == 'read' &&\n  intent.resouce == 'x'"));

        Assert.Equal(2, e.Line);
        Assert.Equal(9, e.Column);
        Assert.Contains("resouce", e.Message, StringComparison.Ordinal);
        Assert.Equal(CelType.Bool, env.Compile("intent.action == 'read' && size(intent.tags) > 0").ResultType);
    }

    [Fact]
    public void Unknown_variable_and_function_and_overload_are_compile_errors()
    {
        var env = CelEnvironment.Create(new Dictionary<string, CelType> { ["intent"] = Intent });

        Assert.Contains("undeclared reference to 'intnet'", Assert.Throws<CelCompileException>(() => env.Compile("intnet.action")).Message, StringComparison.Ordinal);
        Assert.Contains("undeclared reference to 'lenght'", Assert.Throws<CelCompileException>(() => env.Compile("lenght(intent.tags)")).Message, StringComparison.Ordinal);
        Assert.Contains("no matching overload", Assert.Throws<CelCompileException>(() => env.Compile("intent.amount + 'x'")).Message, StringComparison.Ordinal);
        Assert.Contains("no matching overload", Assert.Throws<CelCompileException>(() => env.Compile("intent.action == 1")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Dyn_variables_are_checked_when_evaluated()
    {
        var v = Eval("x + 'a'", new() { ["x"] = CelValue.Of(1L) });
        Assert.True(v.IsError);
        Assert.Contains("no such overload", v.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_variable_binding_is_an_error_value()
    {
        var env = CelEnvironment.Create(new Dictionary<string, CelType> { ["x"] = CelType.Int });
        Assert.True(env.Compile("x == 1").Evaluate(CelActivation.Create(new Dictionary<string, CelValue>())).IsError);
    }

    [Fact]
    public void Integer_overflow_is_an_error()
    {
        Assert.True(Eval("9223372036854775807 + 1").IsError);
        Assert.True(Eval("-9223372036854775808 - 1").IsError);
        Assert.True(Eval("4611686018427387904 * 2").IsError);
        Assert.True(Eval("-9223372036854775808 / -1").IsError);
        Assert.True(Eval("0u - 1u").IsError);
        Assert.True(Eval("18446744073709551615u + 1u").IsError);
        Assert.True(Eval("1 / 0").IsError);
        Assert.Equal(9223372036854775807L, ((CelInt)Eval("9223372036854775806 + 1")).Value);
    }

    [Fact]
    public void Numbers_compare_across_types_by_value()
    {
        Assert.True(Eval("x == 1", new() { ["x"] = CelValue.Of(1.0) }).IsTrue);
        Assert.True(Eval("x == 1", new() { ["x"] = CelValue.Of(1UL) }).IsTrue);
        Assert.True(Eval("x < 2u", new() { ["x"] = CelValue.Of(-1L) }).IsTrue);
        Assert.Same(CelValue.False, Eval("x == x", new() { ["x"] = CelValue.Of(double.NaN) }));
    }

    [Fact]
    public void Timestamps_keep_nanoseconds_and_are_range_checked()
    {
        Assert.True(Eval("timestamp('2024-01-01T00:00:00.000000001Z') > timestamp('2024-01-01T00:00:00Z')").IsTrue);
        Assert.Equal(1L, ((CelInt)Eval("(timestamp('2024-01-01T00:00:00.000000001Z') - timestamp('2024-01-01T00:00:00Z')) == duration('1ns') ? 1 : 0")).Value);
        Assert.True(Eval("timestamp('9999-12-31T23:59:59Z') + duration('1s')").IsError);
        Assert.True(Eval("now > timestamp('2020-01-01T00:00:00Z')", new() { ["now"] = CelValue.Of(DateTimeOffset.UtcNow) }).IsTrue);
        Assert.True(Eval("timestamp('2024-13-01T00:00:00Z')").IsError);
        Assert.True(Eval("timestamp('0000-12-31T23:59:59Z')").IsError);
    }

    [Fact]
    public void Catastrophic_regex_returns_quickly()
    {
        var sw = Stopwatch.StartNew();
        var v = Eval("s.matches('^(a+)+$')", new() { ["s"] = CelValue.Of(new string('a', 30) + "!") });
        Assert.Same(CelValue.False, v);
        Assert.Same(CelValue.True, Eval("s.matches('(a+)+!$')", new() { ["s"] = CelValue.Of(new string('a', 30) + "!") }));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Same(CelValue.False, Eval("s.matches('^(a+)+$')", new() { ["s"] = CelValue.Of(new string('a', 5000) + "!") }));
    }

    [Theory]
    [InlineData("'abc'.matches('a(?=b)')")]
    [InlineData("'abc'.matches('a(?!b)')")]
    [InlineData("'abc'.matches('(?<=a)b')")]
    [InlineData("'abab'.matches('(ab)\\\\1')")]
    [InlineData("'abc'.matches('(?>a)')")]
    [InlineData("'abc'.matches('[')")]
    public void Non_re2_regex_is_a_compile_error(string expr)
    {
        Assert.Throws<CelCompileException>(() => Eval(expr));
    }

    [Fact]
    public void Non_re2_regex_from_a_variable_is_an_error_value()
    {
        Assert.True(Eval("'abc'.matches(p)", new() { ["p"] = CelValue.Of("a(?=b)") }).IsError);
        Assert.True(Eval("'abc'.matches(p)", new() { ["p"] = CelValue.Of("b") }).IsTrue);
    }

    [Theory]
    [InlineData(1_200)]
    [InlineData(100_000)]
    public void Deep_nesting_is_a_compile_error_not_a_crash(int depth)
    {
        var limits = new CelLimits { MaxExpressionLength = 1_000_000 };
        foreach (var expr in new[]
        {
            new string('(', depth) + "1" + new string(')', depth),
            new string('!', depth) + "true",
            new string('-', depth) + "1",
            new string('[', depth) + new string(']', depth),
            string.Concat(Enumerable.Repeat("a.", depth)) + "a",
            string.Join(" + ", Enumerable.Repeat("1", depth)),
            string.Concat(Enumerable.Repeat("f(", depth)) + string.Concat(Enumerable.Repeat(")", depth)),
        })
        {
            var e = Assert.Throws<CelCompileException>(() => CelEnvironment.Create(new Dictionary<string, CelType> { ["a"] = CelType.Dyn }, limits).Compile(expr));
            Assert.Contains("nesting", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Nesting_within_the_limit_compiles()
    {
        Assert.Equal(7L, ((CelInt)Eval(new string('(', 90) + "7" + new string(')', 90))).Value);
        Assert.Throws<CelCompileException>(() => Eval(new string('(', 101) + "7" + new string(')', 101)));
    }

    [Fact]
    public void Expression_longer_than_the_limit_is_a_compile_error()
    {
        var limits = new CelLimits { MaxExpressionLength = 20 };
        var env = CelEnvironment.Create(new Dictionary<string, CelType>(), limits);
        env.Compile("1 + 2");
        Assert.Contains("limit", Assert.Throws<CelCompileException>(() => env.Compile("'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Comprehension_iterations_beyond_the_limit_are_an_error()
    {
        var limits = new CelLimits { MaxComprehensionIterations = 100 };
        var list = CelValue.List(Enumerable.Range(0, 20).Select(i => (CelValue)CelValue.Of((long)i)));
        Assert.Same(CelValue.True, Eval("l.all(x, x >= 0)", new() { ["l"] = list }, limits));
        var v = Eval("l.all(x, l.all(y, x >= 0))", new() { ["l"] = list }, limits);
        Assert.True(v.IsError);
        Assert.Contains("iterations", v.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Cost_beyond_the_budget_is_an_error()
    {
        var limits = new CelLimits { MaxCost = 1_000 };
        var list = CelValue.List(Enumerable.Range(0, 50).Select(i => (CelValue)CelValue.Of((long)i)));
        Assert.False(Eval("l.exists(x, x == 10)", new() { ["l"] = list }, limits).IsError);
        var v = Eval("l.map(x, l.map(y, x + y)).size() > 0", new() { ["l"] = list }, limits);
        Assert.True(v.IsError);
        Assert.Contains("cost", v.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_converts_objects_to_string_keyed_maps_and_integral_numbers_to_int()
    {
        var v = Json("""{"a": 1, "b": 1.5, "c": "s", "d": [true, null], "e": 1e3}""");
        var m = Assert.IsType<CelMap>(v);
        Assert.True(m.TryGetValue("a", out var a) && a is CelInt { Value: 1 });
        Assert.True(m.TryGetValue("b", out var b) && b is CelDouble { Value: 1.5 });
        Assert.True(m.TryGetValue("c", out var c) && c is CelString { Value: "s" });
        Assert.True(m.TryGetValue("e", out var e) && e is CelDouble { Value: 1000 });
        Assert.Equal("""{"a":1,"b":1.5,"c":"s","d":[true,null],"e":1000}""", v.ToJson());
    }

    [Fact]
    public void Strings_literals_support_all_escapes()
    {
        Assert.Equal("a\n\t'\"\\\u00ff\u0100\U0001F600", ((CelString)Eval("'a\\n\\t\\'\\\"\\\\\\xff\\u0100\\U0001F600'")).Value);
        Assert.Equal("x\\ny", ((CelString)Eval("r'x\\ny'")).Value);
        Assert.Equal("l1\nl2", ((CelString)Eval("'''l1\nl2'''")).Value);
        Assert.Equal(new byte[] { 0xff, 0x00 }, ((CelBytes)Eval("b'\\xff\\000'")).Value.ToArray());
        Assert.Throws<CelCompileException>(() => Eval("'\\q'"));
    }

    [Fact]
    public void Macros_evaluate_as_specified()
    {
        Assert.Equal("[2,4,6]", Eval("[1, 2, 3].map(x, x * 2)").ToJson());
        Assert.Equal("[20]", Eval("[1, 2, 3].map(x, x > 1 && x < 3, x * 10)").ToJson());
        Assert.Equal("[1,3]", Eval("[1, 2, 3].filter(x, x % 2 == 1)").ToJson());
        Assert.Same(CelValue.True, Eval("[1, 2, 3].exists_one(x, x == 2)"));
        Assert.Same(CelValue.False, Eval("[2, 2].exists_one(x, x == 2)"));
        Assert.Same(CelValue.True, Eval("{'a': 1}.all(k, k == 'a')"));
        Assert.Same(CelValue.True, Eval("has(m.a) && !has(m.b)", new() { ["m"] = Json("""{"a": 1}""") }));
        Assert.True(Eval("[1, 0].all(x, 1 / x > 0)").IsError);
        Assert.Same(CelValue.False, Eval("[0, -1].all(x, 1 / x > 0)"));
    }

    [Fact]
    public void Program_is_safe_to_evaluate_concurrently()
    {
        var env = CelEnvironment.Create(new Dictionary<string, CelType> { ["l"] = CelType.List(CelType.Int) });
        var program = env.Compile("l.map(x, x * 2).exists(y, y == 40)");
        var list = CelValue.List(Enumerable.Range(0, 30).Select(i => (CelValue)CelValue.Of((long)i)));
        Parallel.For(0, 200, _ => Assert.True(program.Evaluate(CelActivation.Create(new Dictionary<string, CelValue> { ["l"] = list })).IsTrue));
    }
}
