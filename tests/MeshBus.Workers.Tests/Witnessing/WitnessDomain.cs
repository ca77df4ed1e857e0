using System.Collections.Concurrent;
using MassTransit;
using MeshBus.Federation;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust;
using MeshBus.Workers.Lineage;
using MeshBus.Workers.Sync.Bridge;
using MeshBus.Workers.Tests.Skeleton;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MeshBus.Workers.Tests.Witnessing;

/// <summary>
/// One domain for the witnessing tests: its key directory (pinning the peers it is told of), its in-memory bus with the
/// Lineage worker and the Sync worker's bridge on an <see cref="InProcessFederationNetwork"/> (the same envelope code,
/// checks and relay table as over NATS). It checkpoints after every entry, so each append leads to a cosign request.
/// </summary>
internal sealed class WitnessDomain : IAsyncDisposable
{
    private readonly List<IHostedService> _hosted = [];
    private ServiceProvider? _provider;

    private WitnessDomain(string name, string directory, DomainKeys keys)
    {
        Name = name;
        Directory = directory;
        Keys = keys;
    }

    public string Name { get; }

    public string Directory { get; }

    public string KeyDirectory => Keys.DirectoryPath;

    public DomainKeys Keys { get; }

    public ConcurrentQueue<object> Seen { get; } = new();

    /// <summary>Messages a consumer of this domain faulted on (they went to an error queue).</summary>
    public ConcurrentQueue<object> Faulted { get; } = new();

    public IServiceProvider Services => _provider ?? throw new InvalidOperationException("not started");

    public IBus Bus => Services.GetRequiredService<IBus>();

    public ILineageLog Lineage => Services.GetRequiredService<ILineageLog>();

    public ICheckpointStore Checkpoints => (ICheckpointStore)Lineage;

    public static WitnessDomain Create(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "meshbus-witness-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(dir);
        var keys = DomainAdministration.Initialize(Path.Combine(dir, "keys"), name, DateTimeOffset.UtcNow);
        return new WitnessDomain(name, dir, keys);
    }

    /// <summary>Pins <paramref name="peer"/>'s root and key set here, as <c>meshbus trust add</c> does.</summary>
    public void Pin(WitnessDomain peer) => peer.ExportTrust(Path.Combine(KeyDirectory, "trust"));

    /// <summary>Writes this domain's root and key set into <paramref name="directory"/>, the layout of <c>meshbus trust export --out</c>.</summary>
    public void ExportTrust(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var file = Name.Replace('/', '_').Replace('.', '_');
        File.WriteAllText(Path.Combine(directory, file + ".vkey"), File.ReadAllText(Path.Combine(KeyDirectory, DomainKeys.RootVerifierKeyFile)));
        File.WriteAllText(Path.Combine(directory, file + ".keyset.json"), Keys.SignedKeySet);
    }

    public async Task StartAsync(InProcessFederationNetwork network, int checkpointEveryEntries = 1, IDictionary<string, string?>? settings = null)
    {
        var config = new Dictionary<string, string?>
        {
            ["MeshBus:Domain"] = Name,
            ["MeshBus:Transport"] = "InMemory",
            ["MeshBus:DataDirectory"] = Directory,
            ["MeshBus:KeyDirectory"] = KeyDirectory,
            ["MeshBus:ImmediateRetries"] = "1",
            ["MeshBus:RedeliverySeconds:0"] = "1",
            ["Federation:Link"] = "InProcess",
            ["Lineage:CheckpointEveryEntries"] = checkpointEveryEntries.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Lineage:CheckpointInterval"] = "01:00:00",
            ["Lineage:CheckpointCheckInterval"] = "00:00:00.100",
            // The peer's answer waits for this domain's cosignature; on a loaded 2-core machine it took longer than the
            // default 10 s once (the bundle then came without it). The bound stays a bound: the tests' own timeouts are longer.
            ["Lineage:ProofCosignWait"] = "00:00:40",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            config[k] = v;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(config).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IHostApplicationLifetime, Microsoft.Extensions.Hosting.Internal.ApplicationLifetime>();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(network.LinkFor(Name));
        services.AddMeshBus(configuration, [new LineageWorker(), new FederationBridgeWorker()]);
        services.Configure<MassTransitHostOptions>(o => o.WaitUntilStarted = true);
        _provider = services.BuildServiceProvider();
        var seen = _provider.GetRequiredService<IBus>().ConnectReceiveEndpoint("witness-test-observer-" + Guid.NewGuid().ToString("N")[..8], e =>
        {
            e.Handler<Contracts.TrustLapsed>(c => Record(c.Message));
            e.Handler<Contracts.CosignConflict>(c => Record(c.Message));
            e.Handler<Contracts.CheckpointCosigned>(c => Record(c.Message));
            e.Handler<Contracts.CosignRequest>(c => Record(c.Message));
            e.Handler<Contracts.ProofResponse>(c => Record(c.Message));
            e.Handler<Contracts.HaltExecution>(c => Record(c.Message));
        });
        _provider.GetRequiredService<IBus>().ConnectConsumeObserver(new FaultCollector(Faulted));
        foreach (var hosted in _provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
            _hosted.Add(hosted);
        }

        await seen.Ready;
    }

    private Task Record(object message)
    {
        Seen.Enqueue(message);
        return Task.CompletedTask;
    }

    /// <summary>Appends <paramref name="count"/> entries to this domain's lineage log.</summary>
    public async Task AppendAsync(int count)
    {
        for (var i = 0; i < count; i++)
        {
            var key = "test:" + Guid.NewGuid().ToString("N");
            await Lineage.AppendAsync(new LineageEntry(key, "TestEvent", System.Text.Encoding.UTF8.GetBytes(key)));
        }
    }

    /// <summary>Waits until the checkpoint of at least <paramref name="size"/> entries carries a cosignature by <paramref name="witness"/>; returns it.</summary>
    public Task<(StoredCheckpoint Checkpoint, string Line)> CosignedAsync(WitnessDomain witness, long size) =>
        SkeletonHarness.EventuallyAsync(
            async () =>
            {
                foreach (var c in (await Checkpoints.GetCheckpointsAsync()).Where(c => c.Size >= size).OrderByDescending(c => c.Size))
                {
                    var line = (await Checkpoints.GetCosignaturesAsync(c.Size)).FirstOrDefault(l => l.StartsWith("— " + LineageNames.Witness(witness.Name) + " ", StringComparison.Ordinal));
                    if (line is not null)
                    {
                        return (c, line);
                    }
                }

                return default((StoredCheckpoint, string));
            },
            r => r.Item2 is not null,
            $"{Name}'s checkpoint of size ≥ {size} cosigned by {witness.Name}",
            TimeSpan.FromSeconds(30));

    public async Task StopAsync()
    {
        foreach (var hosted in Enumerable.Reverse(_hosted))
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        _hosted.Clear();
        if (_provider is not null)
        {
            await _provider.DisposeAsync();
            _provider = null;

        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            System.IO.Directory.Delete(Directory, true);
        }
        catch (IOException)
        {
            // a store file still closing; the temp directory is cleaned by the OS
        }
    }
}

/// <summary>Collects the messages a consumer faulted on.</summary>
internal sealed class FaultCollector(ConcurrentQueue<object> faulted) : IConsumeObserver
{
    public Task PreConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PostConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
        where T : class
    {
        faulted.Enqueue(context.Message);
        return Task.CompletedTask;
    }
}
