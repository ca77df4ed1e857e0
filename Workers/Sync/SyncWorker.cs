using MassTransit;
using MeshBus.Hosting;
using MeshBus.Trust;
using MeshBus.Workers.Sync.Bridge;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync;

/// <summary>
/// The sync worker: applies and distributes this domain's signed policy (<see cref="PolicyDistributor"/>:
/// <c>PolicyPublished</c>, <c>PolicySynced</c>) and announces the applied governance (<see cref="DomainHeartbeatPublisher"/>:
/// <c>DomainHeartbeat</c>). With <c>Federation:Link</c> set it also hosts the federation bridge
/// (<see cref="FederationBridgeWorker"/>). Not built yet (DESIGN.md §5): the sync watchdog saga and key-set distribution.
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
        services.AddOptions<SyncOptions>().BindConfiguration(SyncOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SyncOptions>, SyncOptionsValidator>());
        services.TryAddSingleton<IAppliedGovernance, AppliedGovernance>();
        services.TryAddSingleton(sp => GovernanceSigner.FromDirectory(
            sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory, sp.GetRequiredService<TimeProvider>()));
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

        if (options.PolicyBundleFile is { Length: > 0 } file && !File.Exists(file))
        {
            errors.Add($"Sync:PolicyBundleFile '{file}' does not exist (environment variable Sync__PolicyBundleFile)");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
