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

    /// <summary>
    /// Every options section and the class bound to it, from the classes with a <c>Section</c> constant in the MeshBus
    /// assemblies beside the tests and in the four workers' build output (the workers are built before this project).
    /// </summary>
    internal static Dictionary<string, Type> KnownSections()
    {
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var workers = new[] { "Sync", "Authorize", "Enforce", "Lineage" }
            .Select(w => Path.Combine(TestPaths.RepositoryRoot(), "Workers", w, "bin", tfm.Parent!.Name, tfm.Name, $"meshbus-{w.ToLowerInvariant()}.dll"))
            .ToList();
        Assert.All(workers, dll => Assert.True(File.Exists(dll), "worker not built: " + dll));
        var assemblies = Directory.GetFiles(AppContext.BaseDirectory, "MeshBus.*.dll").Concat(workers)
            .Select(f => Assembly.LoadFrom(f))
            .Append(typeof(MeshBusOptions).Assembly)
            .Distinct();
        var sections = new Dictionary<string, Type>(StringComparer.OrdinalIgnoreCase);
        foreach (var type in assemblies.SelectMany(ExportedTypes))
        {
            if (type.GetField("Section", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field && field.GetRawConstantValue() is string section)
            {
                sections[section] = type;
            }
        }

        return sections;
    }

    private static IEnumerable<Type> ExportedTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetExportedTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            return e.Types.OfType<Type>();
        }
    }

    /// <summary>
    /// Whether an environment variable sets an existing option: <c>Section__Name</c>, a nested
    /// <c>Section__Object__Name</c>, or either with the <c>_FILE</c> suffix (<see cref="FileSecrets"/>).
    /// </summary>
    internal static bool NamesASetting(string variable, IReadOnlyDictionary<string, Type> sections)
    {
        var name = variable.EndsWith(FileSecrets.Suffix, StringComparison.Ordinal) ? variable[..^FileSecrets.Suffix.Length] : variable;
        var parts = name.Split("__");
        if (parts.Length < 2 || !sections.TryGetValue(parts[0], out var type))
        {
            return false;
        }

        for (var i = 1; i < parts.Length; i++)
        {
            var property = type.GetProperty(parts[i], BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null || (i == parts.Length - 1 && !property.CanWrite))
            {
                return false;
            }

            type = property.PropertyType;
        }

        // a leaf is a value (string, number, enum, time span, ...), not an options object
        return type == typeof(string) || type.IsValueType || Nullable.GetUnderlyingType(type) is not null;
    }

    internal static List<string> UnknownVariables(JsonObject services)
    {
        var known = KnownSections();
        var unknown = new List<string>();
        foreach (var (name, service) in services)
        {
            if (service?["image"]?.GetValue<string>() is not { } image || !image.StartsWith("meshbus/", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var (variable, _) in service["environment"]?.AsObject() ?? [])
            {
                if (!(ForeignVariables.Contains(variable) || NamesASetting(variable, known)))
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
        var services = ReadYaml("""
            services:
              w:
                image: meshbus/sync:local
                environment:
                  RabbitMqTransport__Hots: x
                  MeshBus__Domain: d
                  Federation__Nats__Url: nats://n:4222
                  Federation__Nats__Pasword_FILE: /run/secrets/p
                  Federation__Nats: x
                  Storage__ConnectionString_FILE: /run/secrets/c
            """)!["services"]!.AsObject();
        Assert.Equal(["w: RabbitMqTransport__Hots", "w: Federation__Nats__Pasword_FILE", "w: Federation__Nats"], UnknownVariables(services));
    }

    private static IEnumerable<(string Name, JsonObject Service)> WorkerServices(JsonObject services) =>
        services.Where(s => s.Value?["build"]?["args"]?["WORKER"] is not null).Select(s => (s.Key, s.Value!.AsObject()));

    private static Dictionary<string, string> ExampleEnvironment() =>
        File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot(), "compose", ".env.example"))
            .Where(l => l.Contains('=') && !l.TrimStart().StartsWith('#'))
            .ToDictionary(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);

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
            Assert.Equal($"/run/secrets/{prefix}-db-connection", (string?)env["Storage__ConnectionString_FILE"]);
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
        // the workers' connection string (a secret) names the domain's own database server
        var connection = ExampleEnvironment()[$"{prefix.ToUpperInvariant()}_DB_CONNECTION"];
        Assert.Contains($"Host={prefix}-postgres;", connection, StringComparison.Ordinal);
    }

    [Fact]
    public void Compose_waits_longer_for_a_stopping_worker_than_the_workers_own_shutdown_bound()
    {
        using var host = MeshBusHost.CreateBuilder(["--MeshBus:Domain=acme.example/prod"], new EmptyWorker()).Build();
        var bound = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.Extensions.Hosting.HostOptions>>().Value.ShutdownTimeout;
        foreach (var (name, service) in WorkerServices(Services()))
        {
            var grace = (string?)service["stop_grace_period"] ?? "10s";
            Assert.True(TimeSpan.FromSeconds(int.Parse(grace.TrimEnd('s'), CultureInfo.InvariantCulture)) > bound, $"{name}: stop_grace_period {grace} is not above the shutdown bound {bound}");
        }
    }

    [Fact]
    public void The_first_start_creates_keys_and_policies_once_before_any_worker_starts()
    {
        var compose = Compose();
        var services = compose["services"]!.AsObject();
        var init = services["meshbus-init"]!;
        // compose/init.sh, mounted as a config, is what the init service runs
        Assert.Equal("/init.sh", (string?)init["configs"]![0]!["target"]);
        var script = (string?)compose["configs"]![(string)init["configs"]![0]!["source"]!]!["file"];
        Assert.Equal("./init.sh", script);
        var text = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot(), "compose", "init.sh"));
        foreach (var step in new[] { "meshbus keys init", "meshbus trust add", "meshbus policy sign" })
        {
            Assert.Contains(step, text, StringComparison.Ordinal);
        }

        Assert.Equal(["/bin/sh", "/init.sh"], init["entrypoint"]!.AsArray().Select(e => (string?)e));
        Assert.Equal("cli", (string?)init["build"]!["target"]);
        Assert.Contains("../samples/fleet:/policies:ro", init["volumes"]!.AsArray().Select(v => (string?)v));
        Assert.Equal("no", (string?)init["restart"]);
        foreach (var (name, service) in WorkerServices(services))
        {
            Assert.Equal("service_completed_successfully", (string?)service["depends_on"]?["meshbus-init"]?["condition"]);
            // only its own domain's key volume, read-only, where the init service writes it
            var prefix = name[..name.IndexOf('-')];
            Assert.Equal([$"{prefix}-keys:/meshbus:ro"], service["volumes"]!.AsArray().Select(v => (string?)v));
            Assert.Contains($"{prefix}-keys:/meshbus/{prefix}", init["volumes"]!.AsArray().Select(v => (string?)v));
            var env = service["environment"]!.AsObject();
            Assert.Equal("/meshbus/domain", (string?)env["MeshBus__KeyDirectory"]);
            Assert.Equal("/meshbus/policy/domain.json", (string?)env["Sync__PolicyBundleFile"]);
        }
    }

    [Fact]
    public void Secrets_reach_the_workers_as_files_never_as_variables()
    {
        var compose = Compose();
        var declared = compose["secrets"]!.AsObject();
        foreach (var (name, service) in WorkerServices(compose["services"]!.AsObject()))
        {
            var env = service["environment"]!.AsObject();
            var mounted = service["secrets"]!.AsArray().Select(s => (string?)s).ToList();
            foreach (var (variable, value) in env)
            {
                Assert.False(variable.Contains("Password", StringComparison.OrdinalIgnoreCase) && !variable.EndsWith("_FILE", StringComparison.Ordinal), $"{name}: {variable} is a secret in a variable");
                Assert.False(variable.EndsWith("ConnectionString", StringComparison.Ordinal), $"{name}: {variable} holds a password; use {variable}_FILE");
                Assert.DoesNotContain("Password=", (string?)value ?? "", StringComparison.OrdinalIgnoreCase);
                if (variable.EndsWith("_FILE", StringComparison.Ordinal))
                {
                    var path = (string?)value ?? "";
                    Assert.StartsWith("/run/secrets/", path, StringComparison.Ordinal);
                    var secret = path["/run/secrets/".Length..];
                    Assert.True(mounted.Contains(secret), $"{name}: {variable} reads {path}, but the service does not mount the secret {secret}");
                    Assert.True(declared.ContainsKey(secret), $"secret {secret} is not declared");
                }
            }

            Assert.NotNull(env["RabbitMqTransport__Password_FILE"]);
            Assert.NotNull(env["Storage__ConnectionString_FILE"]);
        }

        // each declared secret comes from a variable of compose/.env (compose/.env.example names them all)
        var example = ExampleEnvironment();
        foreach (var (secret, definition) in declared)
        {
            var variable = (string?)definition!["environment"];
            Assert.True(variable is not null && example.ContainsKey(variable), $"secret {secret}: its variable {variable} is not in compose/.env.example");
        }
    }

    [Theory]
    [InlineData("acme")]
    [InlineData("partner")]
    public void The_workers_database_user_is_not_the_superuser(string prefix)
    {
        var postgres = Services()[$"{prefix}-postgres"]!;
        var env = postgres["environment"]!.AsObject();
        var superuser = (string?)env["POSTGRES_USER"];
        Assert.Equal($"/run/secrets/{prefix}-postgres-password", (string?)env["POSTGRES_PASSWORD_FILE"]);
        Assert.Null(env["POSTGRES_PASSWORD"]);
        var workersUser = ExampleEnvironment()[$"{prefix.ToUpperInvariant()}_DB_CONNECTION"].Split(';')
            .Select(p => p.Split('=', 2)).Single(p => p[0].Equals("Username", StringComparison.OrdinalIgnoreCase))[1];
        Assert.NotEqual(superuser, workersUser);
        // the workers' connection string reaches the database's init script, which makes that user (no superuser)
        Assert.Contains(postgres["secrets"]!.AsArray(), s => s is JsonObject o && (string?)o["source"] == $"{prefix}-db-connection" && (string?)o["target"] == "db-connection");
        Assert.Contains(postgres["configs"]!.AsArray(), c => c is JsonObject o && ((string?)o["target"])?.StartsWith("/docker-entrypoint-initdb.d/", StringComparison.Ordinal) == true);
        var script = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot(), "compose", "postgres-init.sh"));
        Assert.Contains("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE", script, StringComparison.Ordinal);
    }

    [Fact]
    public void One_NATS_with_JetStream_users_and_a_healthcheck_joins_the_domains()
    {
        var compose = Compose();
        var services = compose["services"]!.AsObject();
        Assert.Single(services, s => s.Value?["image"]?.GetValue<string>().StartsWith("nats:", StringComparison.Ordinal) == true);
        var nats = services["nats"]!;
        Assert.Equal(["-c", "/etc/nats/nats.conf"], nats["command"]!.AsArray().Select(c => (string?)c));
        Assert.Equal("/etc/nats/nats.conf", (string?)nats["configs"]![0]!["target"]);
        Assert.Equal("./nats.conf", (string?)compose["configs"]![(string)nats["configs"]![0]!["source"]!]!["file"]);
        Assert.Contains("/healthz", nats["healthcheck"]!["test"]!.ToJsonString(), StringComparison.Ordinal);
        var conf = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot(), "compose", "nats.conf"));
        Assert.Contains("jetstream", conf, StringComparison.Ordinal);
        foreach (var domain in Domains)
        {
            var sync = services[$"{domain}-sync"]!;
            Assert.Contains("federation", sync["networks"]!.AsArray().Select(n => (string?)n));
            var env = sync["environment"]!.AsObject();
            Assert.Equal("Nats", (string?)env["Federation__Link"]);
            Assert.Equal("nats://nats:4222", (string?)env["Federation__Nats__Url"]);
            Assert.Contains($"user: \"{(string?)env["Federation__Nats__User"]}\"", conf, StringComparison.Ordinal);
            Assert.Equal($"/run/secrets/{domain}-nats-password", (string?)env["Federation__Nats__Password_FILE"]);
            // no other worker reaches NATS
            foreach (var worker in Workers.Where(w => w != "sync"))
            {
                Assert.DoesNotContain("federation", services[$"{domain}-{worker}"]!["networks"]!.AsArray().Select(n => (string?)n));
            }
        }
    }

    /// <summary>The permission blocks of compose/nats.conf's users, or of a configuration scripts/nats-test-config.sh wrote, in order.</summary>
    internal static List<string> NatsPermissions(string conf) =>
        [.. System.Text.RegularExpressions.Regex.Matches(conf, @"permissions: \{.*?\n\s*\} \}", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(m => System.Text.RegularExpressions.Regex.Replace(m.Value, @"\s+", " "))];

    [Fact(Timeout = 60_000)]
    [Trait("Category", "Integration")]
    public async Task The_NATS_users_have_exactly_the_permissions_of_the_test_configuration_and_nats_server_accepts_the_file()
    {
        var root = TestPaths.RepositoryRoot();
        var dir = Directory.CreateTempSubdirectory("meshbus-compose-nats-").FullName;
        try
        {
            var generated = await RunAsync("bash", [Path.Combine(root, "scripts", "nats-test-config.sh"), dir, "4222"], new()
            {
                ["MESH_NATS_ORIGIN_DOMAIN"] = "acme.example/prod",
                ["MESH_NATS_TARGET_DOMAIN"] = "partner.example/prod",
            });
            Assert.True(generated.Code == 0, generated.Output);
            var expected = NatsPermissions(await File.ReadAllTextAsync(Path.Combine(dir, "nats.conf")));
            Assert.Equal(2, expected.Count);
            var conf = Path.Combine(root, "compose", "nats.conf");
            Assert.Equal(expected, NatsPermissions(await File.ReadAllTextAsync(conf)));

            // nats-server (the version the tests run) parses the mounted file with the passwords compose hands it, and
            // refuses it without them
            var ok = await RunAsync("nats-server", ["-t", "-c", conf], new() { ["ACME_NATS_PASSWORD"] = "a", ["PARTNER_NATS_PASSWORD"] = "p" });
            Assert.True(ok.Code == 0, ok.Output);
            var missing = await RunAsync("nats-server", ["-t", "-c", conf], new() { ["ACME_NATS_PASSWORD"] = "a" });
            Assert.NotEqual(0, missing.Code);
            Assert.Contains("PARTNER_NATS_PASSWORD", missing.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, string[] args, Dictionary<string, string> environment)
    {
        var info = new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment.Remove("ACME_NATS_PASSWORD");
        info.Environment.Remove("PARTNER_NATS_PASSWORD");
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        using var process = System.Diagnostics.Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(bound.Token);
        return (process.ExitCode, await output + await error);
    }

    [Fact]
    public void The_example_environment_sets_every_required_variable()
    {
        var text = File.ReadAllText(ComposePath);
        var example = ExampleEnvironment();
        var required = System.Text.RegularExpressions.Regex.Matches(text, @"\$\{([A-Z0-9_]+):\?").Select(m => m.Groups[1].Value).Distinct();
        Assert.All(required, v => Assert.Contains(v, example.Keys));
    }
}
