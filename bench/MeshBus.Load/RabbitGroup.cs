using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using Npgsql;

namespace MeshBus.Load;

/// <summary>
/// The one-domain RabbitMQ paths, each responder in a process of its own, as in a fleet: plain MassTransit
/// request/response (<c>meshbus-load-plain</c>, no MeshBus code), the same request/response hosted by MeshBus's hosting
/// (<c>meshbus-load hosted-responder</c>), and intent → grant through the real <c>meshbus-authorize</c> executable beside
/// <c>meshbus-sync</c> (its heartbeats), on SQLite and on PostgreSQL. This process is the load generator (a plain
/// MassTransit bus: persistent messages, publisher confirms). Everything runs in the virtual host of <c>--amqp</c>, which
/// the caller creates and deletes (bench/run-load.sh); a PostgreSQL database is created and dropped here.
/// </summary>
public sealed class RabbitGroup : IAsyncDisposable
{
    private const ushort Prefetch = 32;
    private static readonly TimeSpan ReadyBound = TimeSpan.FromSeconds(90);
    private readonly List<ChildProcess> _children = [];
    private readonly List<LoadPath> _paths = [];
    private readonly Dictionary<string, Watched> _watched = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly LoadOptions _options;
    private readonly string _dataDirectory;
    private IBusControl? _bus;
    private string? _database;

    private RabbitGroup(LoadOptions options)
    {
        _options = options;
        _dataDirectory = Path.Combine(Path.GetTempPath(), "meshbus-load-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dataDirectory);
    }

    /// <summary>The paths, in the order they are measured.</summary>
    public IReadOnlyList<LoadPath> Paths => _paths;

    /// <summary>Every process whose CPU is read, by name.</summary>
    public IReadOnlyDictionary<string, Watched> Watched => _watched;

    /// <summary>Starts the responders and workers, the generator's bus, and checks each path answers once.</summary>
    public static async Task<RabbitGroup> StartAsync(LoadOptions options)
    {
        var group = new RabbitGroup(options);
        try
        {
            await group.StartCoreAsync();
            return group;
        }
        catch
        {
            await group.DisposeAsync();
            throw;
        }
    }

    private async Task StartCoreAsync()
    {
        var amqp = _options.Amqp!;
        var user = amqp.UserInfo.Split(':');
        var vhost = Uri.UnescapeDataString(amqp.AbsolutePath.TrimStart('/'));
        vhost = vhost.Length == 0 ? "/" : vhost;
        var domain = $"load{Guid.NewGuid().ToString("N")[..6]}.example/prod";
        var now = DateTimeOffset.UtcNow;
        var keyDirectory = Path.Combine(_dataDirectory, "keys");
        var keys = DomainKeys.Load(DomainAdministration.Initialize(keyDirectory, domain, now).DirectoryPath, KeyUsage.Credential);
        var policyFile = Path.Combine(_dataDirectory, "policy.json");
        await File.WriteAllTextAsync(policyFile, PolicyBundleSigning.Sign($$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{domain}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://cluster-a/**"]},
                       "condition":"'deployers' in agent.claims.groups && intent.maxDurationSeconds <= 1800",
                       "obligations":{"maxLeaseSeconds":300}}]}
            """, DomainKeys.Load(keyDirectory, KeyUsage.Grant).Signer(KeyUsage.Grant, now)));

        var broker = new Dictionary<string, string>
        {
            ["MeshBus__Domain"] = domain,
            ["MeshBus__Transport"] = "RabbitMq",
            ["MeshBus__KeyDirectory"] = keyDirectory,
            ["RabbitMqTransport__Host"] = amqp.Host,
            ["RabbitMqTransport__Port"] = amqp.Port.ToString(CultureInfo.InvariantCulture),
            ["RabbitMqTransport__VirtualHost"] = vhost,
            ["RabbitMqTransport__Username"] = Uri.UnescapeDataString(user[0]),
            ["RabbitMqTransport__Password"] = Uri.UnescapeDataString(user.ElementAtOrDefault(1) ?? ""),
            ["RabbitMqTransport__PrefetchCount"] = Prefetch.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Warning",
        };

        // The generator: plain MassTransit, persistent messages and confirms (its defaults), the agents' queues.
        var agents = new Dictionary<string, LoadAgent>();
        var stacks = new List<(string Name, string? Root)> { ("sqlite", null) };
        if (_options.Postgres is not null)
        {
            stacks.Add(("postgres", null));
        }

        if (_options.Before is not null)
        {
            stacks.Add(("sqlite@before", _options.Before));
        }

        foreach (var (stack, _) in stacks)
        {
            agents[stack] = new LoadAgent(domain, "load-" + stack.Replace('@', '-'), keys.Signer(KeyUsage.Credential, now), now);
        }

        _bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(amqp.Host, (ushort)amqp.Port, vhost, h =>
            {
                h.Username(Uri.UnescapeDataString(user[0]));
                h.Password(Uri.UnescapeDataString(user.ElementAtOrDefault(1) ?? ""));
                h.PublisherConfirmation = true;
            });
            cfg.PrefetchCount = 256;
            foreach (var agent in agents.Values)
            {
                cfg.ReceiveEndpoint(AgentQueue.Name(agent.Subject), agent.ConfigureQueue);
            }
        });
        using (var starting = new CancellationTokenSource(ReadyBound))
        {
            await _bus.StartAsync(starting.Token);
        }

        // Plain MassTransit responder: its own process, no MeshBus code.
        var plain = Add(ChildProcess.Start("plain", _options.Executable("bench/MeshBus.Load.Plain", "meshbus-load-plain.dll"),
            [amqp.ToString(), "plain-echo", Prefetch.ToString(CultureInfo.InvariantCulture)], new Dictionary<string, string>()));
        await plain.WaitLineAsync("ready", ReadyBound);
        _watched["plain"] = new Watched("plain", plain.Pid, plain.AllocatedBytesAsync);
        var plainClient = _bus.CreateRequestClient<LoadPing>(new Uri("queue:plain-echo"), RequestTimeout.After(s: 30));
        _paths.Add(new LoadPath("plain", async () => (await plainClient.GetResponse<LoadPong>(new LoadPing(Guid.NewGuid()))).Message is not null, ["plain"]));

        // The same responder with MeshBus's hosting (AddMeshBus: its endpoint filters, telemetry, scheduler); with --before
        // also the one built from the other tree, to measure a change before and after in the same run.
        foreach (var (suffix, root) in Variants())
        {
            var hostedDirectory = Path.Combine(_dataDirectory, "hosted" + suffix);
            Directory.CreateDirectory(hostedDirectory);
            var queue = "hosted-echo" + suffix.Replace('@', '-');
            var hostedEnvironment = new Dictionary<string, string>(broker)
            {
                ["MeshBus__DataDirectory"] = hostedDirectory,
                ["RabbitMqTransport__EntityPrefix"] = "hosted" + suffix.Replace('@', '-') + "-",
                ["LOAD_QUEUE"] = queue,
            };
            var hosted = Add(ChildProcess.Start("hosted" + suffix, _options.Executable("bench/MeshBus.Load", "MeshBus.Load.dll", root), ["hosted-responder"], hostedEnvironment));
            await hosted.WaitLineAsync("ready", ReadyBound);
            _watched[hosted.Name] = new Watched(hosted.Name, hosted.Pid, hosted.AllocatedBytesAsync);
            var hostedClient = _bus.CreateRequestClient<LoadPing>(new Uri("queue:" + queue), RequestTimeout.After(s: 30));
            _paths.Add(new LoadPath("hosted-bare" + suffix, async () => (await hostedClient.GetResponse<LoadPong>(new LoadPing(Guid.NewGuid()))).Message is not null, [hosted.Name]));
        }

        // The mesh: meshbus-sync and meshbus-authorize, per storage, each stack under its own entity prefix.
        foreach (var (stack, root) in stacks)
        {
            var directory = Path.Combine(_dataDirectory, stack);
            Directory.CreateDirectory(directory);
            var prefix = stack.Replace('@', '-') + "-";
            var environment = new Dictionary<string, string>(broker)
            {
                ["MeshBus__DataDirectory"] = directory,
                ["RabbitMqTransport__EntityPrefix"] = prefix,
                ["Sync__PolicyBundleFile"] = policyFile,
                ["Sync__HeartbeatInterval"] = "00:00:01",
                ["Authorize__PolicyBundleFile"] = policyFile,
            };
            if (stack == "postgres")
            {
                _database = "meshbus_load_" + Guid.NewGuid().ToString("N")[..10];
                await using (var connection = new NpgsqlConnection(_options.Postgres))
                {
                    await connection.OpenAsync();
                    await using var create = new NpgsqlCommand($"CREATE DATABASE {_database}", connection);
                    await create.ExecuteNonQueryAsync();
                }

                environment["Storage__Provider"] = "Postgres";
                environment["Storage__ConnectionString"] = new NpgsqlConnectionStringBuilder(_options.Postgres) { Database = _database }.ConnectionString;
            }

            foreach (var worker in new[] { "sync", "authorize" })
            {
                var port = FreePort();
                var name = $"{worker}-{stack}";
                var folder = char.ToUpperInvariant(worker[0]) + worker[1..];
                var process = Add(ChildProcess.Start(name, _options.Executable($"Workers/{folder}", $"meshbus-{worker}.dll", root), [],
                    new Dictionary<string, string>(environment) { ["Health__Urls"] = $"http://127.0.0.1:{port}" }));
                _watched[name] = new Watched(name, process.Pid, () => MetricsAllocatedAsync(port));
                await WaitReadyAsync(process, port);
            }

            var agent = agents[stack];
            var intents = await _bus.GetSendEndpoint(new Uri($"queue:{prefix}authorize-intents"));
            _paths.Add(new LoadPath("grant-" + stack, () => agent.GrantAsync(i => intents.Send(i)), ["authorize-" + stack, "sync-" + stack], agent.PrepareAsync));
        }

        // Every path must answer before anything is measured (Authorize needs Sync's first heartbeat).
        foreach (var path in _paths)
        {
            using var bound = new CancellationTokenSource(ReadyBound);
            while (!await TryAsync(path))
            {
                if (bound.IsCancellationRequested)
                {
                    throw new TimeoutException($"path {path.Name} did not answer within {ReadyBound.TotalSeconds:0} s; " +
                        string.Join("\n", _children.Select(c => $"--- {c.Name} (pid {c.Pid}) ---\n{c.Tail}")));
                }

                await Task.Delay(500);
            }
        }
    }

    /// <summary>Stops every process it started and drops its database and files.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_bus is not null)
        {
            await _bus.StopAsync(CancellationToken.None);
        }

        foreach (var child in _children)
        {
            await child.DisposeAsync();
        }

        if (_database is not null)
        {
            await using var connection = new NpgsqlConnection(_options.Postgres);
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
        }

        _http.Dispose();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"could not remove {_dataDirectory}: {e.Message}");
        }
    }

    /// <summary>The tree under measurement, and with <c>--before</c> the other one (path names get <c>@before</c>).</summary>
    private IEnumerable<(string Suffix, string? Root)> Variants() =>
        _options.Before is null ? [("", null)] : [("", null), ("@before", _options.Before)];

    private static async Task<bool> TryAsync(LoadPath path)
    {
        try
        {
            return await path.Call().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception e) when (e is TimeoutException or RequestException)
        {
            return false;
        }
    }

    private ChildProcess Add(ChildProcess child)
    {
        _children.Add(child);
        return child;
    }

    private async Task WaitReadyAsync(ChildProcess process, int port)
    {
        using var bound = new CancellationTokenSource(ReadyBound);
        while (true)
        {
            try
            {
                using var response = await _http.GetAsync(new Uri($"http://127.0.0.1:{port}/health/ready"), bound.Token);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{process.Name} (pid {process.Pid}) not ready within {ReadyBound.TotalSeconds:0} s; its output:\n{process.Tail}");
            }

            await Task.Delay(250, bound.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>The runtime's own allocation counter (<c>dotnet.gc.heap.total_allocated</c>) from the worker's /metrics.</summary>
    private async Task<long?> MetricsAllocatedAsync(int port)
    {
        try
        {
            var text = await _http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
            foreach (var line in text.Split('\n'))
            {
                if (line.StartsWith("dotnet_gc_heap_total_allocated", StringComparison.Ordinal))
                {
                    var rest = line.Contains('}', StringComparison.Ordinal) ? line[(line.LastIndexOf('}') + 1)..] : line[(line.IndexOf(' ', StringComparison.Ordinal) + 1)..];
                    var value = rest.Trim().Split(' ')[0];
                    return (long)double.Parse(value, CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or FormatException)
        {
            Console.Error.WriteLine($"metrics on port {port}: {e.Message}");
        }

        return null;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
