using MassTransit;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Workers.Sync.Bridge;
using MeshBus.Workers.Sync.Federation;
using MeshBus.Workers.Sync.Watchdog;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync;

/// <summary>
/// The sync worker: applies and distributes this domain's signed policy (<see cref="PolicyDistributor"/>:
/// <c>PolicyPublished</c>, <c>PolicySynced</c>) and announces the applied governance (<see cref="DomainHeartbeatPublisher"/>:
/// <c>DomainHeartbeat</c>). With <c>Federation:Link</c> set it also hosts the federation bridge
/// (<see cref="FederationBridgeWorker"/>). Layer 2 towards peers: their verified heartbeats and acknowledgements are
/// recorded in the per-peer sync state (<see cref="PeerGovernanceConsumer"/>, read by Authorize), their key sets
/// accepted under their pinned roots (<see cref="PeerKeySetConsumer"/>; this domain's own goes out with
/// <see cref="KeySetPublisher"/>), and watched by one
/// sync watchdog saga per peer (<see cref="PeerWatchdogStateMachine"/>), stored durably with its deadlines on the
/// domain's scheduler. In a federation (<c>Sync:FederationName</c>) it adopts and relays the federation policy
/// (<see cref="FederationPolicyDistributor"/>) and watches that every member announces it
/// (<see cref="FederationWatchdogStateMachine"/>).
/// </summary>
public sealed class SyncWorker : IMeshBusWorker
{
    /// <summary>The SQLite file of the watchdog sagas when embedded.</summary>
    public const string SagaSqliteFile = "sync-sagas.db";

    private readonly FederationBridgeWorker _bridge = new();
    private bool _bridgeEnabled;
    private SqlStoreOptions? _sagas;

    /// <summary>The worker with storage from configuration (<c>Storage:*</c>, <c>MeshBus:DataDirectory</c>).</summary>
    public SyncWorker()
    {
    }

    /// <summary>The worker with an explicit saga store (tests, embedded hosts).</summary>
    public SyncWorker(SqlStoreOptions sagas) => _sagas = sagas;

    /// <inheritdoc />
    public string Name => "sync";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SyncOptions>().BindConfiguration(SyncOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SyncOptions>, SyncOptionsValidator>());
        services.TryAddSingleton<IAppliedGovernance, AppliedGovernance>();
        services.TryAddSingleton(sp => GovernanceSigner.FromDirectory(
            sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory, sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService<PolicyDistributor>();
        services.AddHostedService<DomainHeartbeatPublisher>();
        services.AddHostedService<KeySetPublisher>();
        services.AddHostedService<PeerSyncAgeGauge>();
        services.TryAddSingleton<FederationPolicyDistributor>();
        services.AddHostedService<WatchdogRearmer>();
        services.AddHostedService(sp => sp.GetRequiredService<FederationPolicyDistributor>());
        services.TryAddPeerSyncStore();
        services.TryAddSingleton(sp =>
        {
            // The bridge's trust config when it is hosted (one view of the peers' key sets), else the key directory's.
            var self = sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.Domain;
            if (sp.GetService<BridgeKeys>() is { Keys: TrustConfig bridged })
            {
                return SyncPeers.From(bridged, self);
            }

            var dir = sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory;
            return SyncPeers.From(DomainKeys.Load(dir).LoadTrust(), self);
        });
        _sagas ??= MeshBusStorage.SqlStore(configuration, SagaSqliteFile);
        _bridgeEnabled = BridgeOptions.Enabled(configuration);
        if (_bridgeEnabled)
        {
            _bridge.ConfigureServices(services, configuration);
        }
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
        var sagas = _sagas ?? throw new InvalidOperationException("SyncWorker.ConfigureServices must run before ConfigureBus");
        bus.AddConsumer<PeerGovernanceConsumer, PeerGovernanceConsumerDefinition>();
        bus.AddConsumer<PeerLapseConsumer, PeerLapseConsumerDefinition>();
        bus.AddConsumer<PeerKeySetConsumer, PeerKeySetConsumerDefinition>();
        bus.AddSagaStateMachine<PeerWatchdogStateMachine, PeerWatchdogState, PeerWatchdogSagaDefinition>().SqlRepository(sagas);
        bus.AddConsumer<FederationPolicyConsumer, FederationPolicyConsumerDefinition>();
        bus.AddSagaStateMachine<FederationWatchdogStateMachine, FederationWatchdogState, FederationWatchdogSagaDefinition>().SqlRepository(sagas);
        if (_bridgeEnabled)
        {
            _bridge.ConfigureBus(bus);
        }
    }
}

/// <summary>Checks the <c>Sync</c> section on start, naming the setting and its environment variable.</summary>
internal sealed class SyncOptionsValidator : IValidateOptions<SyncOptions>
{
    public ValidateOptionsResult Validate(string? name, SyncOptions options)
    {
        var errors = new List<string>();
        if (options.HeartbeatInterval <= TimeSpan.Zero)
        {
            errors.Add("Sync:HeartbeatInterval must be a positive duration like 00:00:05 (environment variable Sync__HeartbeatInterval)");
        }

        if (options.PeerStallAfter <= TimeSpan.Zero || options.ReplicaLiveness <= TimeSpan.Zero || options.ClockSkew < TimeSpan.Zero || options.ContradictionGrace < TimeSpan.Zero)
        {
            errors.Add("Sync:PeerStallAfter and Sync:ReplicaLiveness must be positive and Sync:ClockSkew, Sync:ContradictionGrace not negative (durations like 00:00:45; environment variables Sync__PeerStallAfter, …)");
        }

        if (options.PolicyBundleFile is { Length: > 0 } file && !File.Exists(file))
        {
            errors.Add($"Sync:PolicyBundleFile '{file}' does not exist (environment variable Sync__PolicyBundleFile)");
        }

        if (options.FederationPolicyBundleFile is { Length: > 0 } federationFile)
        {
            if (string.IsNullOrWhiteSpace(options.FederationName))
            {
                errors.Add("Sync:FederationPolicyBundleFile needs Sync:FederationName, the federation the bundle belongs to (environment variable Sync__FederationName)");
            }

            if (!File.Exists(federationFile))
            {
                errors.Add($"Sync:FederationPolicyBundleFile '{federationFile}' does not exist (environment variable Sync__FederationPolicyBundleFile)");
            }
        }

        if (options.FederationMismatchAfter <= TimeSpan.Zero)
        {
            errors.Add("Sync:FederationMismatchAfter must be a positive duration like 00:01:00 (environment variable Sync__FederationMismatchAfter)");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
