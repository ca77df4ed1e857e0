using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MeshBus.Policy.Cel;

namespace MeshBus.Policy.Tests.Cel;

/// <summary>One test of google/cel-spec's conformance data (tests/simple/testdata, copied under Cel/testdata).</summary>
public sealed record ConformanceCase(string File, string Section, string Name, TextProto Test, string? SkipReason);

/// <summary>Loads the conformance files and runs one test against the engine.</summary>
public static partial class Conformance
{
    public const string ProtobufMessages = "protobuf message types";
    public const string Containers = "containers";
    public const string Unknowns = "unknown values (partial evaluation)";
    public const string FunctionDecls = "custom function declarations";
    public const string StringsExtension = "strings extension";
    public const string TwoVariableComprehensions = "two-variable comprehensions extension";
    public const string OptionalTypes = "optional types extension";

    private static readonly Lazy<IReadOnlyList<ConformanceCase>> Cases = new(Load);

    public static IReadOnlyList<ConformanceCase> All => Cases.Value;

    public static string TestDataDirectory => Path.Combine(AppContext.BaseDirectory, "Cel", "testdata");

    private static List<ConformanceCase> Load()
    {
        var list = new List<ConformanceCase>();
        foreach (var path in Directory.GetFiles(TestDataDirectory, "*.textproto").Order(StringComparer.Ordinal))
        {
            var file = TextProto.Parse(File.ReadAllText(path));
            var fileName = file.String("name") ?? Path.GetFileNameWithoutExtension(path);
            foreach (var section in file.Messages("section"))
            {
                foreach (var test in section.Messages("test"))
                {
                    list.Add(new ConformanceCase(fileName, section.String("name")!, test.String("name")!, test, SkipReason(fileName, test)));
                }
            }
        }

        return list;
    }

    [GeneratedRegex(@"\b(TestAllTypes|NestedTestAllTypes|TestRequired|GlobalEnum|NestedEnum|google\.protobuf\.(Any|Struct|Value|ListValue|NullValue|\w+Value)|proto2|proto3)\b")]
    private static partial Regex ProtobufNames();

    private static string? SkipReason(string file, TextProto test)
    {
        var expr = test.String("expr") ?? string.Empty;
        if (!string.IsNullOrEmpty(test.String("container")))
        {
            return Containers;
        }

        if (ProtobufNames().IsMatch(expr) || UsesProtobufValues(test))
        {
            return ProtobufMessages;
        }

        foreach (var decl in test.Messages("type_env"))
        {
            if (decl.Has("function"))
            {
                return FunctionDecls;
            }

            if (decl.Message("ident")?.Message("type") is { } t && ToType(t) is null)
            {
                return ProtobufMessages;
            }
        }

        if (test.Has("unknown") || test.Has("any_unknowns"))
        {
            return Unknowns;
        }

        if (file == "string_ext")
        {
            return StringsExtension;
        }

        if (file == "macros2")
        {
            return TwoVariableComprehensions;
        }

        if (expr.Contains("optional.", StringComparison.Ordinal) || expr.Contains("?.", StringComparison.Ordinal) || expr.Contains(".?", StringComparison.Ordinal) || expr.Contains("[?", StringComparison.Ordinal))
        {
            return OptionalTypes;
        }

        return null;
    }

    private static bool UsesProtobufValues(TextProto m)
    {
        foreach (var (name, value) in m.Fields)
        {
            if (name is "object_value" or "enum_value")
            {
                var inner = value as TextProto;
                var typeUrl = inner?.Fields.FirstOrDefault().Name ?? string.Empty;
                if (!typeUrl.EndsWith("google.protobuf.Timestamp]", StringComparison.Ordinal) && !typeUrl.EndsWith("google.protobuf.Duration]", StringComparison.Ordinal))
                {
                    return true;
                }
            }

            if (value is TextProto child && UsesProtobufValues(child))
            {
                return true;
            }
        }

        return false;
    }

    public static CelType? ToType(TextProto t)
    {
        if (t.String("primitive") is { } p)
        {
            return p switch
            {
                "BOOL" => CelType.Bool,
                "INT64" => CelType.Int,
                "UINT64" => CelType.Uint,
                "DOUBLE" => CelType.Double,
                "STRING" => CelType.String,
                "BYTES" => CelType.Bytes,
                _ => null,
            };
        }

        if (t.Message("list_type") is { } l)
        {
            return l.Message("elem_type") is { } e && ToType(e) is { } et ? CelType.List(et) : null;
        }

        if (t.Message("map_type") is { } m)
        {
            var k = m.Message("key_type") is { } kt ? ToType(kt) : null;
            var v = m.Message("value_type") is { } vt ? ToType(vt) : null;
            return k is null || v is null ? null : CelType.Map(k, v);
        }

        if (t.String("well_known") is { } w)
        {
            return w switch
            {
                "TIMESTAMP" => CelType.Timestamp,
                "DURATION" => CelType.Duration,
                _ => null,
            };
        }

        if (t.String("message_type") is { } mt)
        {
            return mt switch
            {
                "google.protobuf.Timestamp" => CelType.Timestamp,
                "google.protobuf.Duration" => CelType.Duration,
                _ => null,
            };
        }

        if (t.Has("dyn"))
        {
            return CelType.Dyn;
        }

        if (t.Has("null"))
        {
            return CelType.Null;
        }

        if (t.Has("type"))
        {
            return CelType.Type;
        }

        return null;
    }

    public static CelValue ToValue(TextProto v)
    {
        var (name, raw) = v.Fields.Single();
        switch (name)
        {
            case "int64_value":
                return CelValue.Of(long.Parse((string)raw, CultureInfo.InvariantCulture));
            case "uint64_value":
                return CelValue.Of(ulong.Parse((string)raw, CultureInfo.InvariantCulture));
            case "double_value":
                var text = ((string)raw).ToLowerInvariant();
                return CelValue.Of(text switch
                {
                    "inf" or "infinity" => double.PositiveInfinity,
                    "-inf" or "-infinity" => double.NegativeInfinity,
                    "nan" => double.NaN,
                    _ => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
                });
            case "string_value":
                return CelValue.Of(Encoding.UTF8.GetString((byte[])raw));
            case "bytes_value":
                return CelValue.Of((byte[])raw);
            case "bool_value":
                return CelValue.Of((string)raw == "true");
            case "null_value":
                return CelValue.Null;
            case "type_value":
                return TypeValue(raw is byte[] b ? Encoding.UTF8.GetString(b) : (string)raw);
            case "list_value":
                return CelValue.List(((TextProto)raw).Messages("values").Select(ToValue));
            case "map_value":
                return CelValue.Map(((TextProto)raw).Messages("entries").Select(e => KeyValuePair.Create(ToValue(e.Message("key")!), ToValue(e.Message("value")!))));
            case "object_value":
                {
                    var (typeUrl, body) = ((TextProto)raw).Fields.Single();
                    var msg = (TextProto)body;
                    var seconds = long.Parse(msg.String("seconds") ?? "0", CultureInfo.InvariantCulture);
                    var nanos = int.Parse(msg.String("nanos") ?? "0", CultureInfo.InvariantCulture);
                    var env = CelEnvironment.Create(new Dictionary<string, CelType>());
                    return typeUrl.Contains("Duration", StringComparison.Ordinal)
                        ? env.Compile($"duration('{seconds}s') + duration('{nanos}ns')").Evaluate(CelActivation.Create(new Dictionary<string, CelValue>()))
                        : env.Compile($"timestamp({seconds}) + duration('{nanos}ns')").Evaluate(CelActivation.Create(new Dictionary<string, CelValue>()));
                }

            default:
                throw new NotSupportedException($"value kind {name}");
        }
    }

    private static CelValue TypeValue(string name) =>
        CelEnvironment.Create(new Dictionary<string, CelType>()).Compile($"type({name switch
        {
            "int" => "1",
            "uint" => "1u",
            "double" => "1.0",
            "bool" => "true",
            "string" => "''",
            "bytes" => "b''",
            "null_type" => "null",
            "list" => "[]",
            "map" => "{}",
            "type" => "int",
            "google.protobuf.Timestamp" => "timestamp(0)",
            "google.protobuf.Duration" => "duration('0s')",
            _ => throw new NotSupportedException(name),
        }})").Evaluate(CelActivation.Create(new Dictionary<string, CelValue>()));

    /// <summary>Runs a test; returns null when it passes, otherwise what went wrong.</summary>
    public static string? Run(ConformanceCase c)
    {
        var test = c.Test;
        var expr = test.String("expr")!;
        var vars = new Dictionary<string, CelType>(StringComparer.Ordinal);
        foreach (var decl in test.Messages("type_env"))
        {
            vars[decl.String("name")!] = ToType(decl.Message("ident")!.Message("type")!)!;
        }

        var bindings = new Dictionary<string, CelValue>(StringComparer.Ordinal);
        foreach (var b in test.Messages("bindings"))
        {
            bindings[b.String("key")!] = ToValue(b.Message("value")!.Message("value")!);
        }

        var options = new CelCompileOptions
        {
            TypeCheck = test.String("disable_check") != "true",
            EnableMacros = test.String("disable_macros") != "true",
        };
        var expectError = test.Has("eval_error") || test.Has("any_eval_errors");
        CelValue result;
        try
        {
            var program = CelEnvironment.Create(vars).Compile(expr, options);
            result = program.Evaluate(CelActivation.Create(bindings));
        }
        catch (CelCompileException e)
        {
            return expectError ? null : $"compile error: {e.Message}";
        }

        if (expectError)
        {
            return result.IsError ? null : $"expected an error, got {result}";
        }

        var expectedValue = test.Message("value") ?? test.Message("typed_result")?.Message("result");
        if (expectedValue is null)
        {
            return result.IsError ? $"expected a value, got {result}" : null;
        }

        var expected = ToValue(expectedValue);
        return StrictEquals(expected, result) ? null : $"expected {expected}, got {result}";
    }

    /// <summary>Same type and value (no numeric cross-type equality), NaN equal to NaN.</summary>
    public static bool StrictEquals(CelValue a, CelValue b)
    {
        if (a.GetType() != b.GetType())
        {
            return false;
        }

        switch (a)
        {
            case CelDouble x:
                var y = ((CelDouble)b).Value;
                return double.IsNaN(x.Value) ? double.IsNaN(y) : x.Value == y;
            case CelList l:
                var lb = (CelList)b;
                return l.Items.Count == lb.Items.Count && l.Items.Zip(lb.Items).All(p => StrictEquals(p.First, p.Second));
            case CelMap m:
                var mb = (CelMap)b;
                return m.Count == mb.Count && m.Entries.All(e => mb.Entries.Any(f => StrictEquals(e.Key, f.Key) && StrictEquals(e.Value, f.Value)));
            case CelError:
                return true;
            default:
                var env = CelEnvironment.Create(new Dictionary<string, CelType> { ["a"] = CelType.Dyn, ["b"] = CelType.Dyn });
                return env.Compile("a == b").Evaluate(CelActivation.Create(new Dictionary<string, CelValue> { ["a"] = a, ["b"] = b })).IsTrue;
        }
    }
}
