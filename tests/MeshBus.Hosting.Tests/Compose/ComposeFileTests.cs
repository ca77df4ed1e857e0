using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace MeshBus.Hosting.Tests.Compose;

/// <summary>
/// compose/compose.yaml without a Docker engine: valid against the Compose Specification's JSON Schema
/// (compose-spec/compose-spec, schema/compose-spec.json, Apache-2.0; see LICENSE and SOURCE beside this file), and every
/// worker variable names a setting that exists in an options class.
/// </summary>
public sealed class ComposeFileTests
{
    private static readonly string ComposePath = Path.Combine(TestPaths.RepositoryRoot(), "compose", "compose.yaml");
    private static readonly string[] Workers = ["sync", "authorize", "enforce", "lineage"];
    private static readonly string[] Domains = ["acme", "partner"];

    /// <summary>Variables a worker may carry that are not MeshBus options.</summary>
    private static readonly string[] ForeignVariables = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"];

    // The file names its dialect "https://json-schema.org/draft-07/schema"; JsonSchema.Net knows draft-07 by its
    // canonical id, so the reference is normalised before the schema is built (the rules themselves are unchanged).
    private static readonly Lazy<JsonSchema> Schema = new(() =>
    {
        var node = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Compose", "compose-spec.json")))!;
        node["$schema"] = "http://json-schema.org/draft-07/schema#";
        return JsonSchema.FromText(node.ToJsonString());
    });

    /// <summary>Reads YAML with merge keys (<c>&lt;&lt;: *anchor</c>) resolved, plain scalars typed (YAML core schema).</summary>
    internal static JsonNode? ReadYaml(string text)
    {
        var deserializer = new DeserializerBuilder().WithAttemptingUnquotedStringTypeDeserialization().Build();
        var graph = deserializer.Deserialize(new MergingParser(new Parser(new StringReader(text))));
        return ToJson(graph);
    }

    private static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        IDictionary<object, object?> map => new JsonObject(map.Select(kv =>
            KeyValuePair.Create(Convert.ToString(kv.Key, CultureInfo.InvariantCulture)!, ToJson(kv.Value)))),
        IEnumerable<object?> list when value is not string => new JsonArray([.. list.Select(ToJson)]),
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int or long or short or byte or sbyte or uint or ulong or ushort => JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture)),
        float or double or decimal => JsonValue.Create(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };

    internal static List<string> SchemaErrors(JsonNode? document)
    {
        var element = JsonSerializer.SerializeToElement(document);
        var result = Schema.Value.Evaluate(element, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid)
        {
            return [];
        }

        return [.. (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))
            .DefaultIfEmpty("invalid (no details)")];
    }

    /// <summary>Every options section and its settings, from the classes with a <c>Section</c> constant.</summary>
    internal static Dictionary<string, HashSet<string>> KnownSettings()
    {
        var sections = new Dictionary<string, HashSet<string>>(StringComparer.OrdinalIgnoreCase);
        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "MeshBus.*.dll")
            .Select(f => Assembly.LoadFrom(f))
            .Append(typeof(MeshBusOptions).Assembly)
            .Distinct();
        foreach (var type in assemblies.SelectMany(a => a.GetExportedTypes()))
        {
            if (type.GetField("Section", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field && field.GetRawConstantValue() is string section)
            {
                var settings = sections.TryGetValue(section, out var s) ? s : sections[section] = new(StringComparer.OrdinalIgnoreCase);
                foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
                {
                    settings.Add(property.Name);
                }
            }
        }

        return sections;
    }

    internal static List<string> UnknownVariables(JsonObject services)
    {
        var known = KnownSettings();
        var unknown = new List<string>();
        foreach (var (name, service) in services)
        {
            if (service?["image"]?.GetValue<string>() is not { } image || !image.StartsWith("meshbus/", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var (variable, _) in service["environment"]?.AsObject() ?? [])
            {
                var parts = variable.Split("__");
                var ok = parts.Length == 2
                    ? known.TryGetValue(parts[0], out var settings) && settings.Contains(parts[1])
                    : ForeignVariables.Contains(variable);
                if (!ok)
                {
                    unknown.Add($"{name}: {variable}");
                }
            }
        }

        return unknown;
    }

    private static JsonObject Compose() => ReadYaml(File.ReadAllText(ComposePath))!.AsObject();

    private static JsonObject Services() => Compose()["services"]!.AsObject();

    [Fact]
    public void Compose_file_is_valid_against_the_Compose_Specification_schema()
    {
        var errors = SchemaErrors(Compose());
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public void The_schema_check_rejects_a_file_the_specification_forbids()
    {
        var bad = ReadYaml("services:\n  a:\n    image: x\n    deploy: { replicas: many }\n    restart_policy: always\n");
        Assert.NotEmpty(SchemaErrors(bad));
    }

    [Fact]
    public void Every_worker_variable_names_an_existing_setting()
    {
        var unknown = UnknownVariables(Services());
        Assert.True(unknown.Count == 0, "unknown settings: " + string.Join(", ", unknown));
    }

    [Fact]
    public void A_misspelt_setting_is_reported()
    {
        var services = ReadYaml("services:\n  w:\n    image: meshbus/sync:local\n    environment:\n      RabbitMqTransport__Hots: x\n      MeshBus__Domain: d\n")!["services"]!.AsObject();
        Assert.Equal(["w: RabbitMqTransport__Hots"], UnknownVariables(services));
    }

    [Theory]
    [InlineData("acme", "acme.example/prod")]
    [InlineData("partner", "partner.example/prod")]
    public void Each_domain_runs_four_workers_on_its_own_broker_and_database(string prefix, string domain)
    {
        var services = Services();
        foreach (var worker in Workers)
        {
            var service = services[$"{prefix}-{worker}"];
            Assert.NotNull(service);
            var env = service!["environment"]!.AsObject();
            Assert.Equal(domain, (string?)env["MeshBus__Domain"]);
            Assert.Equal("RabbitMq", (string?)env["MeshBus__Transport"]);
            Assert.Equal($"{prefix}-rabbitmq", (string?)env["RabbitMqTransport__Host"]);
            Assert.Equal("Postgres", (string?)env["Storage__Provider"]);
            Assert.Contains($"Host={prefix}-postgres;", (string?)env["Storage__ConnectionString"], StringComparison.Ordinal);
            Assert.Equal("http://0.0.0.0:8080", (string?)env["Health__Urls"]);
            Assert.Contains("/health/ready", service["healthcheck"]!["test"]!.ToJsonString(), StringComparison.Ordinal);
            Assert.Equal(worker[..1].ToUpperInvariant() + worker[1..], (string?)service["build"]!["args"]!["WORKER"]);
            var replicas = (long?)service["deploy"]?["replicas"] ?? 1;
            if (worker is "authorize" or "enforce")
            {
                Assert.True(replicas > 1, $"{prefix}-{worker} should run competing consumers");
            }
        }

        Assert.NotNull(services[$"{prefix}-rabbitmq"]);
        Assert.NotNull(services[$"{prefix}-postgres"]);
    }

    [Fact]
    public void Compose_waits_longer_for_a_stopping_worker_than_the_workers_own_shutdown_bound()
    {
        using var host = MeshBusHost.CreateBuilder(["--MeshBus:Domain=acme.example/prod"], new EmptyWorker()).Build();
        var bound = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.Extensions.Hosting.HostOptions>>().Value.ShutdownTimeout;
        foreach (var (name, service) in Services().Where(s => s.Value?["image"]?.GetValue<string>().StartsWith("meshbus/", StringComparison.Ordinal) == true))
        {
            var grace = (string?)service!["stop_grace_period"] ?? "10s";
            Assert.True(TimeSpan.FromSeconds(int.Parse(grace.TrimEnd('s'), CultureInfo.InvariantCulture)) > bound, $"{name}: stop_grace_period {grace} is not above the shutdown bound {bound}");
        }
    }

    [Fact]
    public void One_NATS_with_JetStream_joins_the_domains()
    {
        var services = Services();
        Assert.Single(services, s => s.Value?["image"]?.GetValue<string>().StartsWith("nats:", StringComparison.Ordinal) == true);
        Assert.Contains("-js", services["nats"]!["command"]!.AsArray().Select(c => (string?)c));
        Assert.Contains("/healthz", services["nats"]!["healthcheck"]!["test"]!.ToJsonString(), StringComparison.Ordinal);
        foreach (var domain in Domains)
        {
            Assert.Contains("federation", services[$"{domain}-sync"]!["networks"]!.AsArray().Select(n => (string?)n));
        }
    }

    [Fact]
    public void The_example_environment_sets_every_required_variable()
    {
        var text = File.ReadAllText(ComposePath);
        var example = File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot(), "compose", ".env.example"))
            .Where(l => l.Contains('=') && !l.TrimStart().StartsWith('#'))
            .Select(l => l[..l.IndexOf('=')])
            .ToHashSet();
        var required = System.Text.RegularExpressions.Regex.Matches(text, @"\$\{([A-Z0-9_]+):\?").Select(m => m.Groups[1].Value).Distinct();
        Assert.All(required, v => Assert.Contains(v, example));
    }
}
