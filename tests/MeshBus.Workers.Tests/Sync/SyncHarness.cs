using System.Collections.Concurrent;
using MassTransit;
using MassTransit.InMemoryTransport;
using MassTransit.Transports;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Workers.Sync;
using MeshBus.Workers.Sync.Watchdog;
using MeshBus.Workers.Tests.Authorize;
using MeshBus.Workers.Tests.Skeleton;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace MeshBus.Workers.Tests.Sync;

/// <summary>
/// One domain's Sync worker on the in-memory transport with its real SQLite stores (watchdog sagas, per-peer sync state)
/// in a data directory that outlives the harness (a restart is a new harness on the same directory), a
/// <see cref="FakeTimeProvider"/> moved together with the transport's scheduler, and one peer (globex) whose root is
/// pinned and whose key set is accepted. Peer statements are published as the bridge delivers them.
/// </summary>
internal sealed class SyncHarness : IAsyncDisposable
{
    public const string Domain = "acme.example/prod";
    public const string Peer = CrossDomainHarness.TargetDomain;

    private readonly ServiceProvider _provider;
    private readonly List<IHostedService> _hosted = [];
    private readonly ReceivesInFlight _receiving = new();

    private SyncHarness(ServiceProvider provider, FakeTimeProvider clock, FederatedDomain peer)
    {
        _provider = provider;
        Clock = clock;
        PeerKeys = peer;
    }

    public FakeTimeProvider Clock { get; }

    public FederatedDomain PeerKeys { get; }

    public IBus Bus => _provider.GetRequiredService<IBus>();

    public IPeerSyncStore Store => _provider.GetRequiredService<IPeerSyncStore>();

    public MeshBus.Ledger.ILineageLog Lineage => _provider.GetRequiredService<MeshBus.Ledger.ILineageLog>();

    /// <summary>The peers as Sync knows them (its trust config, updated by accepted key sets).</summary>
    public SyncPeers Peers => _provider.GetRequiredService<SyncPeers>();

    /// <summary>What this harness's bus published (the Sync worker's own messages included).</summary>
    public ConcurrentQueue<object> Published { get; } = new();

    /// <summary>What the endpoints took, successfully or not (with the fault), by endpoint (queue name).</summary>
    public ConcurrentQueue<(string Endpoint, object Message, Exception? Fault)> Consumed { get; } = new();

    /// <summary>What Sync's endpoints took (the Lineage worker beside it takes many of the same messages).</summary>
    public IEnumerable<(string Endpoint, object Message, Exception? Fault)> SyncConsumed => Consumed.Where(c => c.Endpoint.StartsWith("sync-", StringComparison.Ordinal));

    /// <summary>The harness's services (the Sync worker's own included).</summary>
    public IServiceProvider Services => _provider;

    public static async Task<SyncHarness> StartAsync(string dataDirectory, FakeTimeProvider clock, FederatedDomain peer, TimeSpan stallAfter,
        IReadOnlyDictionary<string, string?>? settings = null)
    {
        var keyDir = Path.Combine(dataDirectory, "keys");
        var keys = Directory.Exists(keyDir) ? DomainKeys.Load(keyDir) : DomainAdministration.Initialize(keyDir, Domain, clock.GetUtcNow());
        var trust = keys.LoadTrust();
        var pinned = new TrustConfig([.. trust.PinnedRoots.Values, peer.Root.VerifierKey], trust.OwnKeySet);
        var accepted = pinned.AcceptKeySet(peer.SignedKeySet, clock.GetUtcNow());
        Xunit.Assert.True(accepted.IsValid, accepted.Detail);
        var config = new Dictionary<string, string?>
        {
            ["MeshBus:Domain"] = Domain,
            ["MeshBus:Transport"] = "InMemory",
            ["MeshBus:DataDirectory"] = dataDirectory,
            ["MeshBus:KeyDirectory"] = keyDir,
            ["MeshBus:ImmediateRetries"] = "1",
            ["Sync:PeerStallAfter"] = stallAfter.ToString("c"),
            // The domain's own heartbeats are not the subject here: once an hour of fake time.
            ["Sync:HeartbeatInterval"] = "01:00:00",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(config).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IHostApplicationLifetime, Microsoft.Extensions.Hosting.Internal.ApplicationLifetime>();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddSingleton<TimeProvider>(clock);
        services.AddSingleton(SyncPeers.From(pinned, Domain));
        var sagas = new SqlStoreOptions { Provider = StorageProvider.Sqlite, ConnectionString = $"Data Source={Path.Combine(dataDirectory, SyncWorker.SagaSqliteFile)}" };
        // With the Lineage worker beside it, as a domain runs them: what the watchdog says lands in the domain's log.
        services.AddMeshBus(configuration, [new SyncWorker(sagas), new MeshBus.Workers.Lineage.LineageWorker()]);
        services.Configure<MassTransitHostOptions>(o => o.WaitUntilStarted = true);
        var provider = services.BuildServiceProvider();
        var harness = new SyncHarness(provider, clock, peer);
        var bus = provider.GetRequiredService<IBus>();
        bus.ConnectReceiveObserver(harness._receiving);
        bus.ConnectPublishObserver(new PublishRecorder(harness.Published));
        bus.ConnectConsumeObserver(new ConsumeRecorder(harness.Consumed));
        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
            harness._hosted.Add(hosted);
        }

        return harness;
    }

    /// <summary>A heartbeat of the peer signed with its envelope key (or <paramref name="key"/>), as the bridge delivers it.</summary>
    public DomainHeartbeat PeerHeartbeat(DateTimeOffset? sentAt = null, long domainEpoch = 1, ISigner? key = null, string federationDigest = "")
    {
        var at = sentAt ?? Clock.GetUtcNow();
        return new GovernanceSigner(() => key ?? PeerKeys.Signers[KeyUsage.Envelope]).Sign(
            new DomainHeartbeat(Peer, at.ToUnixTimeMilliseconds(), at, PeerKeys.KeySet.Sequence, domainEpoch, 0, federationDigest));
    }

    /// <summary>Publishes a peer statement and waits until every endpoint that takes it has (and the watchdog moved).</summary>
    public async Task DeliverAsync<T>(T message)
        where T : class
    {
        await Bus.Publish(message);
        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(Consumed.Any(c => ReferenceEquals(c.Message, message) || Equals(c.Message, message))), taken => taken,
            "the statement to be taken");
        await IdleAsync();
    }

    public IReadOnlyList<T> PublishedOf<T>() => Published.OfType<T>().ToList();

    /// <summary>Waits until no endpoint is mid-receive (a saga's schedule is handed to the delay provider when its receive ends).</summary>
    public async Task IdleAsync()
    {
        // Two quiet looks in a row: a consumer's publish starts the next receive just after the first one ended.
        for (var quiet = 0; quiet < 2;)
        {
            await SkeletonHarness.EventuallyAsync(() => Task.FromResult(_receiving.Count), n => n <= 0, "every endpoint to finish the messages it took");
            await Task.Delay(50);
            quiet = _receiving.Count <= 0 ? quiet + 1 : 0;
        }
    }

    /// <summary>Moves the clock and the transport's scheduler together.</summary>
    public async Task AdvanceAsync(TimeSpan by)
    {
        await IdleAsync();
        Clock.Advance(by);
        if (_provider.GetService<IBusInstance>() is IInMemoryDelayProvider delays)
        {
            await delays.Advance(by);
        }

        await IdleAsync();
    }

    public Task<PeerWatchdogState?> WatchdogAsync() =>
        _provider.GetRequiredService<ISagaStateReader>().LoadAsync<PeerWatchdogState>(PeerWatchdog.IdOf(Peer));

    public async ValueTask DisposeAsync()
    {
        foreach (var hosted in Enumerable.Reverse(_hosted))
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _provider.DisposeAsync();
    }

    private sealed class PublishRecorder(ConcurrentQueue<object> published) : IPublishObserver
    {
        public Task PrePublish<T>(PublishContext<T> context)
            where T : class => Task.CompletedTask;

        public Task PostPublish<T>(PublishContext<T> context)
            where T : class
        {
            published.Enqueue(context.Message);
            return Task.CompletedTask;
        }

        public Task PublishFault<T>(PublishContext<T> context, Exception exception)
            where T : class => Task.CompletedTask;
    }

    private sealed class ConsumeRecorder(ConcurrentQueue<(string, object, Exception?)> consumed) : IConsumeObserver
    {
        public Task PreConsume<T>(ConsumeContext<T> context)
            where T : class => Task.CompletedTask;

        public Task PostConsume<T>(ConsumeContext<T> context)
            where T : class
        {
            consumed.Enqueue((Endpoint(context), context.Message, null));
            return Task.CompletedTask;
        }

        public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
            where T : class
        {
            consumed.Enqueue((Endpoint(context), context.Message, exception));
            return Task.CompletedTask;
        }

        private static string Endpoint(ConsumeContext context) => context.ReceiveContext.InputAddress?.AbsolutePath.Split('/').LastOrDefault() ?? "";
    }
}
