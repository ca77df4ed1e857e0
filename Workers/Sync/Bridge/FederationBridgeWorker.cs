using MassTransit;
using MeshBus.Federation;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace MeshBus.Workers.Sync.Bridge;

/// <summary>The keys the bridge works with: the domain's envelope key, the resolver of peers' keys (chained to pinned roots), the peers.</summary>
/// <param name="EnvelopeKey">This domain's envelope signing key.</param>
/// <param name="Keys">Peers' key sets, accepted only under a pinned root.</param>
/// <param name="Peers">The pinned peer domains.</param>
public sealed record BridgeKeys(ISigner EnvelopeKey, IKeyResolver Keys, IReadOnlyCollection<string> Peers);

/// <summary>
/// The federation bridge as a part of the Sync worker (any number of replicas: they share the JetStream consumer and the
/// store). Hosted by <see cref="SyncWorker"/> when <c>Federation:Link</c> is set; an embedded host registers an
/// <see cref="IFederationLink"/> of an <see cref="InProcessFederationNetwork"/> first.
/// </summary>
public sealed class FederationBridgeWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "bridge";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<BridgeOptions>().BindConfiguration(BridgeOptions.Section)
            .Validate(o => o.Link != BridgeLink.Nats || !string.IsNullOrWhiteSpace(o.Nats.Url), "Federation:Nats:Url is required with Federation:Link=Nats")
            .Validate(o => o.SkewSeconds is >= 0 and <= 300, "Federation:SkewSeconds must be within 0..300")
            .ValidateOnStart();
        services.TryAddSingleton(sp =>
        {
            var dir = sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory;
            var keys = DomainKeys.Load(dir, KeyUsage.Envelope);
            var trust = keys.LoadTrust();
            var now = sp.GetRequiredService<TimeProvider>().GetUtcNow();
            return new BridgeKeys(keys.Signer(KeyUsage.Envelope, now), trust, trust.PinnedRoots.Keys.Where(d => d != keys.Domain).ToList());
        });
        services.TryAddSingleton<IFederationStore>(sp =>
        {
            // The process's storage setup (Hosting): the shared pool of the worker's own tables (docs/operations.md
            // counts no pool of the bridge's own), or federation.db.
            var storage = sp.GetRequiredService<MeshBusStorage>();
            var time = sp.GetRequiredService<TimeProvider>();
            return storage.Provider == StorageProvider.Postgres
                ? SqlFederationStore.Postgres(storage.Postgres, time)
                : SqlFederationStore.Sqlite(storage.SqlitePath("federation.db"), time);
        });
        services.TryAddSingleton<IFederationLink>(sp =>
        {
            var options = sp.GetRequiredService<IOptions<BridgeOptions>>().Value;
            if (options.Link != BridgeLink.Nats)
            {
                throw new InvalidOperationException("Federation:Link=InProcess needs the embedded host to register the in-process link");
            }

            return new NatsFederationLink(sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.Domain, options.Nats,
                sp.GetRequiredService<ILogger<NatsFederationLink>>(), sp.GetRequiredService<ILoggerFactory>());
        });
        services.TryAddSingleton<ILocalBus, MassTransitLocalBus>();
        services.TryAddSingleton(RelayTable.Default);
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<BridgeOptions>>().Value;
            var keys = sp.GetRequiredService<BridgeKeys>();
            return new FederationBridge(
                new FederationOptions
                {
                    LocalDomain = sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.Domain,
                    Peers = keys.Peers,
                    Skew = TimeSpan.FromSeconds(options.SkewSeconds),
                    GapGrace = TimeSpan.FromMilliseconds(options.GapGraceMilliseconds),
                },
                sp.GetRequiredService<RelayTable>(), keys.EnvelopeKey, keys.Keys, sp.GetRequiredService<IFederationStore>(),
                sp.GetRequiredService<IFederationLink>(), sp.GetRequiredService<ILocalBus>(), sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<FederationBridge>>());
        });
        services.AddHostedService<BridgeService>();
        // The bridge's counters leave through the host's OpenTelemetry setup (MeshBus.Hosting), beside the bus's own.
        services.ConfigureOpenTelemetryMeterProvider(m => m.AddMeter(FederationCounters.MeterName));
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
        // The table the bridge relays with is the one registered (IBusRegistrationConfigurator is the service
        // collection): a consumer bound from another table would take types the bridge cannot seal, or miss a route.
        foreach (var route in RegisteredTable(bus).Routes)
        {
            bus.AddConsumer(typeof(RelayConsumer<>).MakeGenericType(route.MessageType), typeof(RelayConsumerDefinition<>).MakeGenericType(route.MessageType));
        }
    }

    /// <summary>
    /// The <see cref="RelayTable"/> registered in <paramref name="services"/> (the last registration, as the container
    /// resolves it), or <see cref="RelayTable.Default"/> when none is. Its routes decide the relay consumers before any
    /// service provider exists, so it must be registered as an instance.
    /// </summary>
    /// <exception cref="InvalidOperationException">The table is registered by a factory or a type.</exception>
    public static RelayTable RegisteredTable(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        var registered = services.LastOrDefault(d => d.ServiceType == typeof(RelayTable) && !d.IsKeyedService);
        return registered switch
        {
            null => RelayTable.Default,
            { ImplementationInstance: RelayTable table } => table,
            _ => throw new InvalidOperationException("the RelayTable must be registered as an instance (services.AddSingleton(table)): its routes decide the bridge's consumers when the bus is configured"),
        };
    }
}

/// <summary>Runs the bridge's inbound consumer and its maintenance (outbound pump, gap repair, pruning) for the host's lifetime.</summary>
public sealed class BridgeService(FederationBridge bridge, IOptions<BridgeOptions> options, ILogger<BridgeService> logger) : BackgroundService
{
    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        logger.LogInformation("Federation bridge of {Domain} starting", bridge.LocalDomain);
        try
        {
            await bridge.RunAsync(TimeSpan.FromMilliseconds(options.Value.MaintenanceIntervalMilliseconds), stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
