using System.Diagnostics;
using System.Text;
using Xunit;

namespace MeshBus.Hosting.Tests;

/// <summary>The real worker executables: start-up errors and graceful shutdown on SIGTERM.</summary>
public sealed class WorkerProcessTests
{
    private static readonly string[] OwnSections = ["MeshBus__", "RabbitMqTransport__", "Storage__", "Health__", "Enforce__", "Sync__", "Authorize__"];

    private sealed class WorkerProcess : IDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly Process _process;

        public WorkerProcess(IDictionary<string, string> environment, string worker = "Authorize")
        {
            var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var dll = Path.Combine(TestPaths.RepositoryRoot(), "Workers", worker, "bin", tfm.Parent!.Name, tfm.Name, "meshbus-" + worker.ToLowerInvariant() + ".dll");
            Assert.True(File.Exists(dll), "worker not built: " + dll);
            var start = new ProcessStartInfo("dotnet", [dll])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (var key in start.Environment.Keys.Where(k => OwnSections.Any(s => k.StartsWith(s, StringComparison.OrdinalIgnoreCase))).ToList())
            {
                start.Environment.Remove(key);
            }

            start.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
            foreach (var (key, value) in environment)
            {
                start.Environment[key] = value;
            }

            _process = new Process { StartInfo = start };
            _process.OutputDataReceived += (_, e) => Append(e.Data);
            _process.ErrorDataReceived += (_, e) => Append(e.Data);
            _process.Start();
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public int Id => _process.Id;

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
            }
        }

        public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
        {
            var until = DateTime.UtcNow + timeout;
            while (DateTime.UtcNow < until && !_process.HasExited)
            {
                if (Output.Contains(text, StringComparison.Ordinal))
                {
                    return true;
                }

                await Task.Delay(100);
            }

            return Output.Contains(text, StringComparison.Ordinal);
        }

        public async Task<int?> WaitForExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await _process.WaitForExitAsync(cts.Token);
                return _process.ExitCode;
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
        }
    }

    [Fact]
    public async Task A_worker_without_its_domain_exits_with_code_2_naming_the_variable()
    {
        using var worker = new WorkerProcess(new Dictionary<string, string>());
        var code = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(code == 2, $"exit code {code}\n{worker.Output}");
        Assert.Contains("MeshBus__Domain", worker.Output, StringComparison.Ordinal);
    }

    // Each badly formed setting an operator reported (rc=134 with a stack trace before): exit 2, the variable named.
    [Theory(Timeout = 120_000)]
    [InlineData("Authorize", "MeshBus__Transport", "Rabbit")]
    [InlineData("Authorize", "Storage__Provider", "postgresql")]
    [InlineData("Authorize", "RabbitMqTransport__Port", "abc")]
    [InlineData("Authorize", "Health__Urls", "notaurl")]
    [InlineData("Sync", "Health__ErrorQueueInterval", "00:00:00")]
    [InlineData("Sync", "Health__ErrorQueueInterval", "often")]
    [InlineData("Authorize", "MeshBus__ImmediateRetries", "many")]
    [InlineData("Enforce", "Enforce__HeartbeatTimeout", "abc")]
    [InlineData("Enforce", "Enforce__HeartbeatTimeout", "-00:00:01")]
    [InlineData("Sync", "Sync__HeartbeatInterval", "soon")]
    [InlineData("Sync", "Sync__PolicyBundleFile", "/nonexistent/policy.json")]
    [InlineData("Enforce", "RabbitMqTransport__Password_FILE", "/nonexistent/rabbitmq-password")]
    [InlineData("Enforce", "Enforce__Retention", "00:10:00")]
    public async Task A_badly_formed_setting_ends_the_worker_with_code_2_naming_the_variable(string workerName, string variable, string value)
    {
        using var worker = new WorkerProcess(
            new Dictionary<string, string>
            {
                ["MeshBus__Domain"] = "acme.example/settings",
                ["MeshBus__DataDirectory"] = TestPaths.TempDirectory(),
                [variable] = value,
            },
            workerName);
        var code = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(code == 2, $"exit code {code?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none (still running)"}\n{worker.Output}");
        Assert.Contains(variable, worker.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", worker.Output, StringComparison.Ordinal);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_setting_given_as_a_file_is_read_from_the_file()
    {
        var data = TestPaths.TempDirectory();
        var domainFile = Path.Combine(data, "domain");
        await File.WriteAllTextAsync(domainFile, "acme.example/from-file\n");
        // The domain comes only from the file; the bad port makes the worker stop at its settings check, which would
        // name MeshBus__Domain too if the file had not been read.
        using var worker = new WorkerProcess(
            new Dictionary<string, string>
            {
                ["MeshBus__Domain_FILE"] = domainFile,
                ["MeshBus__DataDirectory"] = data,
                ["RabbitMqTransport__Port"] = "abc",
            },
            "Enforce");
        var code = await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(code == 2, $"exit code {code}\n{worker.Output}");
        Assert.Contains("RabbitMqTransport__Port", worker.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("MeshBus__Domain", worker.Output, StringComparison.Ordinal);
    }

    // A worker that cannot do its job answers 503 naming why, and says it in its log at start.
    [Theory(Timeout = 120_000)]
    [InlineData("Authorize", "keys", null)]
    [InlineData("Sync", "policy", "unsigned")]
    public async Task A_worker_without_keys_or_with_a_refused_policy_is_not_ready_and_says_why(string workerName, string need, string? policy)
    {
        var data = TestPaths.TempDirectory();
        var environment = new Dictionary<string, string>
        {
            ["MeshBus__Domain"] = "acme.example/ready",
            ["MeshBus__DataDirectory"] = data,
            ["MeshBus__KeyDirectory"] = Path.Combine(data, "no-keys-here"),
            ["Health__Urls"] = $"http://127.0.0.1:{TestPaths.FreePort()}",
        };
        if (policy is not null)
        {
            var file = Path.Combine(data, "policy.json");
            await File.WriteAllTextAsync(file, """{"format":"meshbus-policy/v1","scope":"domain","domain":"acme.example/ready","epoch":1,"rules":[]}""");
            environment["Sync__PolicyBundleFile"] = file;
        }

        using var worker = new WorkerProcess(environment, workerName);
        Assert.True(await worker.WaitForOutputAsync("Not ready: ", TimeSpan.FromSeconds(60)), worker.Output);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await http.GetAsync(environment["Health__Urls"] + "/health/ready");
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains(need, body, StringComparison.Ordinal);
        Assert.Contains(need, worker.Output, StringComparison.Ordinal);
    }

    [Fact(Timeout = 120_000)]
    public async Task The_start_line_names_version_transport_storage_and_keys_and_never_a_password()
    {
        using var worker = new WorkerProcess(new Dictionary<string, string>
        {
            ["MeshBus__Domain"] = "acme.example/startline",
            ["MeshBus__Transport"] = "RabbitMq",
            ["RabbitMqTransport__Host"] = "127.0.0.1",
            ["RabbitMqTransport__Port"] = "1",
            ["RabbitMqTransport__Username"] = "mesh",
            ["RabbitMqTransport__Password"] = "rabbit-s3cret",
            ["Storage__Provider"] = "Postgres",
            ["Storage__ConnectionString"] = "Host=127.0.0.1;Port=1;Database=mesh;Username=app;Password=pg-s3cret",
            ["MeshBus__DataDirectory"] = TestPaths.TempDirectory(),
        });
        Assert.True(await worker.WaitForOutputAsync("MeshBus meshbus-authorize ", TimeSpan.FromSeconds(60)), worker.Output);
        var line = worker.Output.Split('\n').Single(l => l.Contains("MeshBus meshbus-authorize ", StringComparison.Ordinal));
        Assert.Contains("amqp://127.0.0.1:1/ as mesh", line, StringComparison.Ordinal);
        Assert.Contains("PostgreSQL 127.0.0.1:1/mesh as app", line, StringComparison.Ordinal);
        Assert.Contains("keys ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", worker.Output, StringComparison.Ordinal);
    }

    [Fact(Timeout = 120_000)]
    public async Task The_console_log_is_json_when_the_operator_names_the_json_formatter()
    {
        using var worker = new WorkerProcess(new Dictionary<string, string>
        {
            ["MeshBus__Domain"] = "acme.example/json",
            ["MeshBus__DataDirectory"] = TestPaths.TempDirectory(),
            ["Logging__Console__FormatterName"] = "json",
        });
        Assert.True(await worker.WaitForOutputAsync("\"Category\":\"MeshBus.Hosting.StartLine\"", TimeSpan.FromSeconds(60)), worker.Output);
        var logLines = worker.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains("\"Category\"", StringComparison.Ordinal)).ToList();
        Assert.All(logLines, l => System.Text.Json.JsonDocument.Parse(l).Dispose());
    }

    [Theory]
    [InlineData("Application started")]
    [InlineData("Bus started")]
    public async Task A_worker_stops_its_bus_and_exits_0_within_seconds_of_SIGTERM(string sentAfter)
    {
        using var worker = new WorkerProcess(new Dictionary<string, string>
        {
            ["MeshBus__Domain"] = "acme.example/sigterm",
            ["MeshBus__Transport"] = "InMemory",
            ["MeshBus__DataDirectory"] = TestPaths.TempDirectory(),
            ["Health__Urls"] = $"http://127.0.0.1:{TestPaths.FreePort()}",
        });
        // "Bus started" comes before the health endpoint has started: SIGTERM then lands in the middle of start-up.
        Assert.True(await worker.WaitForOutputAsync(sentAfter, TimeSpan.FromSeconds(60)), worker.Output);

        using (var kill = Process.Start("kill", ["-TERM", worker.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        var stopwatch = Stopwatch.StartNew();
        var code = await worker.WaitForExitAsync(TimeSpan.FromSeconds(15));
        Assert.True(code == 0, $"exit code {code?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none (still running)"} after {stopwatch.Elapsed}\n{worker.Output}");
        Assert.Contains("Bus stopped", worker.Output, StringComparison.Ordinal);
    }
}
