using MassTransit;
using MeshBus.Hosting;
using MeshBus.Workers.Sync.Bridge;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MeshBus.Workers.Sync;

/// <summary>
/// The sync worker (minimal for the walking skeleton): announces this domain's applied governance with
/// <see cref="DomainHeartbeatPublisher"/>. With <c>Federation:Link</c> set it also hosts the federation bridge (<see cref="FederationBridgeWorker"/>).
/// </summary>
public sealed class SyncWorker : IMeshBusWorker
{
    private readonly FederationBridgeWorker _bridge = new();
    private bool _bridgeEnabled;

    /// <inheritdoc />
    public string Name => "sync";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SyncOptions>().BindConfiguration(SyncOptions.Section);
        services.TryAddSingleton<IAppliedGovernance, AppliedGovernance>();
        services.AddHostedService<PolicyDistributor>();
        services.AddHostedService<DomainHeartbeatPublisher>();
        _bridgeEnabled = BridgeOptions.Enabled(configuration);
        if (_bridgeEnabled)
        {
            _bridge.ConfigureServices(services, configuration);
        }
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
        if (_bridgeEnabled)
        {
            _bridge.ConfigureBus(bus);
        }
    }
}
