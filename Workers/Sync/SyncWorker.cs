using MassTransit;
using MeshBus.Hosting;
using MeshBus.Trust;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync;

/// <summary>
/// The sync worker (minimal for the walking skeleton): announces this domain's applied governance with
/// <see cref="DomainHeartbeatPublisher"/>. Peer watchdogs, policy distribution and the credential authority grow here.
/// </summary>
public sealed class SyncWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "sync";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SyncOptions>().BindConfiguration(SyncOptions.Section);
        services.TryAddSingleton<IAppliedGovernance, AppliedGovernance>();
        services.TryAddSingleton(sp => GovernanceSigner.FromDirectory(
            sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory, sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService<PolicyDistributor>();
        services.AddHostedService<DomainHeartbeatPublisher>();
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
    }
}
