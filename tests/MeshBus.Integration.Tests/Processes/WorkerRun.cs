using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Processes;

/// <summary>
/// One run of worker executables on the shared RabbitMQ, isolated from every other test by its own domain, entity
/// prefix and data directory. Disposing it stops the workers, removes the run's queues and exchanges from the broker
/// and its data directory from the disk, also after a failed test.
/// </summary>
internal sealed class WorkerRun : IAsyncDisposable
{
    /// <summary>Queues the workers name explicitly (without the prefix).</summary>
    public static readonly string[] ExplicitQueues = ["authorize-intents", "enforce-reports", "intent-lifecycle", "lineage-recorder", "meshbus-scheduler"];

    private readonly Uri _amqp;
    private readonly ITestOutputHelper _output;
    private readonly List<WorkerProcess> _workers = [];
    private readonly List<string> _extraQueues = [];
    private readonly string? _domain;

    /// <param name="amqp">The broker and virtual host the run's workers use.</param>
    /// <param name="kind">Names the data directory.</param>
    /// <param name="output">Where clean-up problems are written.</param>
    /// <param name="domain">The run's domain (default: one of its own); the federation tests use their NATS users' domains.</param>
    public WorkerRun(Uri amqp, string kind, ITestOutputHelper output, string? domain = null)
    {
        _amqp = amqp;
        _output = output;
        Id = Guid.NewGuid().ToString("N")[..8];
        _domain = domain;
        DataDirectory = Path.Combine(Path.GetTempPath(), $"meshbus-{kind}-{Id}");
        Directory.CreateDirectory(DataDirectory);
    }

    public string Id { get; }

    public string Domain => _domain ?? $"t{Id}.example/prod";

    public string Prefix => $"t{Id}-";

    public string DataDirectory { get; }

    public IReadOnlyList<WorkerProcess> Workers => _workers;

    /// <summary>All worker output, for failure messages.</summary>
    public string Output => string.Join("\n", _workers.Select(w => $"--- {w.Name} (pid {w.Id}) ---\n{w.Output}"));

    /// <summary>
    /// Starts <c>meshbus-&lt;worker&gt;</c> on this run's domain and prefix, with its own health port and
    /// <paramref name="settings"/> (environment variables) on top. <paramref name="name"/> tells replicas apart.
    /// </summary>
    public WorkerProcess Start(string worker, string keyDirectory, string policyFile, IReadOnlyDictionary<string, string>? settings = null, string? name = null)
    {
        var port = FreePort();
        var userInfo = _amqp.UserInfo.Split(':');
        var environment = new Dictionary<string, string>
        {
            ["MeshBus__Domain"] = Domain,
            ["MeshBus__Transport"] = "RabbitMq",
            ["MeshBus__DataDirectory"] = DataDirectory,
            ["MeshBus__KeyDirectory"] = keyDirectory,
            ["RabbitMqTransport__Host"] = _amqp.Host,
            ["RabbitMqTransport__Port"] = _amqp.Port.ToString(CultureInfo.InvariantCulture),
            ["RabbitMqTransport__VirtualHost"] = VirtualHost,
            ["RabbitMqTransport__Username"] = Uri.UnescapeDataString(userInfo[0]),
            ["RabbitMqTransport__Password"] = Uri.UnescapeDataString(userInfo.ElementAtOrDefault(1) ?? ""),
            ["RabbitMqTransport__EntityPrefix"] = Prefix,
            ["Sync__PolicyBundleFile"] = policyFile,
            ["Sync__HeartbeatInterval"] = "00:00:01",
            ["Authorize__PolicyBundleFile"] = policyFile,
            ["Health__Urls"] = $"http://127.0.0.1:{port}",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Logging__LogLevel__Default"] = "Warning",
            ["WORKER"] = worker,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            environment[key] = value;
        }

        var process = WorkerProcess.Start(name ?? worker, WorkerDll(worker), environment, port);
        _workers.Add(process);
        return process;
    }

    /// <summary>The test process's own bus: this run's broker, and type-named exchanges under this run's prefix.</summary>
    public void ConfigureHost(IRabbitMqBusFactoryConfigurator cfg)
    {
        cfg.MessageTopology.SetEntityNameFormatter(new PrefixEntityNameFormatter(cfg.MessageTopology.EntityNameFormatter, Prefix));
        var userInfo = _amqp.UserInfo.Split(':');
        cfg.Host(_amqp.Host, (ushort)_amqp.Port, VirtualHost, h =>
        {
            h.Username(Uri.UnescapeDataString(userInfo[0]));
            h.Password(Uri.UnescapeDataString(userInfo.ElementAtOrDefault(1) ?? ""));
        });
    }

    /// <summary>A queue (and its exchange) outside the prefix, e.g. an agent's queue, to remove at the end.</summary>
    public void RemoveAtEnd(string queue) => _extraQueues.Add(queue);

    /// <summary>
    /// Writes the run's signed domain policy: <c>deploy</c> on <c>k8s://cluster-a/ns/**</c> allowed to deployers for at
    /// most 30 minutes (lease 120 s), <c>delete</c> denied.
    /// </summary>
    public string WritePolicy(string keyDirectory, DateTimeOffset now)
    {
        var bundle = $$"""
            {
              "format": "meshbus-policy/v1",
              "scope": "domain",
              "domain": "{{Domain}}",
              "epoch": 1,
              "description": "Integration test policy.",
              "rules": [
                {
                  "id": "allow-deploy-web",
                  "effect": "allow",
                  "match": { "actions": ["deploy"], "resources": ["k8s://cluster-a/ns/**"] },
                  "condition": "'deployers' in agent.claims.groups && intent.maxDurationSeconds <= 1800",
                  "obligations": { "maxLeaseSeconds": 120 }
                },
                {
                  "id": "deny-delete",
                  "effect": "deny",
                  "match": { "actions": ["delete"], "resources": ["**"] }
                }
              ]
            }
            """;
        var signer = DomainKeys.Load(keyDirectory, KeyUsage.Grant).Signer(KeyUsage.Grant, now);
        var path = Path.Combine(DataDirectory, "policy.json");
        File.WriteAllText(path, PolicyBundleSigning.Sign(bundle, signer));
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        // Always: a failed test must not leave workers behind.
        foreach (var worker in _workers)
        {
            await worker.StopAsync(_output);
        }

        foreach (var worker in _workers)
        {
            worker.Dispose();
        }

        await CleanBrokerAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException e)
        {
            _output.WriteLine($"could not remove {DataDirectory}: {e.Message}");
        }
    }

    private string VirtualHost
    {
        get
        {
            var path = _amqp.AbsolutePath.TrimStart('/');
            return path.Length == 0 ? "/" : Uri.UnescapeDataString(path);
        }
    }

    /// <summary>Best effort: removes this run's prefixed queues and exchanges, and the extra ones, from the shared broker.</summary>
    private async Task CleanBrokerAsync()
    {
        try
        {
            var factory = new RabbitMQ.Client.ConnectionFactory { Uri = _amqp };
            await using var connection = await factory.CreateConnectionAsync();
            await using var channel = await connection.CreateChannelAsync();
            var formatter = new MeshBus.Hosting.MeshBusEndpointNameFormatter(Prefix);
            var names = new List<string>(ExplicitQueues.Select(q => Prefix + q));
            names.AddRange(new[] { "authorize-renewals", "authorize-endorsements", "authorize-quarantine", AgentIngress.IntentsExchange, AgentIngress.ReportsExchange }.Select(q => Prefix + q));
            var consumerName = typeof(IEndpointNameFormatter).GetMethod(nameof(IEndpointNameFormatter.Consumer))!;
            foreach (var type in new[] { typeof(MeshBus.Workers.Sync.SyncWorker), typeof(MeshBus.Workers.Authorize.AuthorizeWorker), typeof(MeshBus.Workers.Enforce.EnforceWorker), typeof(MeshBus.Workers.Lineage.LineageWorker) }
                .SelectMany(t => t.Assembly.GetTypes())
                .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericTypeDefinition: false } && typeof(IConsumer).IsAssignableFrom(t)))
            {
                names.Add((string)consumerName.MakeGenericMethod(type).Invoke(formatter, null)!);
            }

            foreach (var name in names.Distinct())
            {
                foreach (var queue in new[] { name, name + "_error", name + "_skipped" })
                {
                    await channel.QueueDeleteAsync(queue, false, false);
                    await channel.ExchangeDeleteAsync(queue, false);
                }
            }

            foreach (var queue in _extraQueues.Distinct())
            {
                await channel.QueueDeleteAsync(queue, false, false);
                await channel.ExchangeDeleteAsync(queue, false);
            }

            foreach (var type in typeof(IntentSubmitted).Assembly.GetTypes().Where(t => t is { IsClass: true, IsPublic: true, Namespace: not null }))
            {
                await channel.ExchangeDeleteAsync($"{Prefix}{type.Namespace}:{type.Name}", false);
            }
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.RabbitMQClientException or System.Reflection.ReflectionTypeLoadException or IOException)
        {
            _output.WriteLine("broker clean-up incomplete: " + e.Message);
        }
    }

    private static string WorkerDll(string name)
    {
        // bin/<Configuration>/net10.0 of this assembly -> the same of Workers/<Name>.
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testBin.Parent!.Name;
        var repo = testBin.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        var folder = char.ToUpperInvariant(name[0]) + name[1..];
        var dll = Path.Combine(repo, "Workers", folder, "bin", configuration, testBin.Name, $"meshbus-{name}.dll");
        Assert.True(File.Exists(dll), $"worker executable not built: {dll}");
        return dll;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
