using MassTransit;
using MeshBus.Hosting;
using MeshBus.Trust;
using MeshBus.Workers.Lineage.Witnessing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Lineage;

/// <summary>
/// The lineage worker: <see cref="GovernanceEventRecorder"/> appends the governance events to the domain's lineage log
/// (the same log Authorize appends its decisions to, registered once per process by the hosting's storage setup:
/// <c>lineage.db</c> under the data directory, or PostgreSQL).
/// </summary>
public sealed class LineageWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "lineage";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        // The lineage log is the process's one registration from Storage:* (AddMeshBus).
        services.AddOptions<LineageOptions>().BindConfiguration(LineageOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LineageOptions>, LineageOptionsValidator>());
        services.AddHostedService<LineageCheckpointer>();
        // Verification keys only (no private key): the domain directory's key set and root, and the pinned peers.
        services.TryAddSingleton(sp => new GovernanceAuthority(
            () => sp.GetService<DomainKeys>() ?? DomainKeys.Load(sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory),
            sp.GetRequiredService<TimeProvider>()));
        // Witnessing (docs/lineage.md): this domain's witness key and its pinned peers' keys, read on first use.
        services.TryAddSingleton(sp =>
        {
            var mesh = sp.GetRequiredService<IOptions<MeshBusOptions>>().Value;
            return WitnessKeys.FromDirectory(mesh.Domain, mesh.ResolvedKeyDirectory, sp.GetRequiredService<TimeProvider>());
        });
        services.TryAddSingleton<CosignAttempts>();
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<GovernanceEventRecorder, GovernanceEventRecorderDefinition>();
        bus.AddConsumer<CosignRequester, CosignRequesterDefinition>();
        bus.AddConsumer<CheckpointWitnessConsumer, CheckpointWitnessConsumerDefinition>();
        bus.AddConsumer<ProofResponder, ProofResponderDefinition>();
        bus.AddConsumer<PeerEvidenceRecorder, PeerEvidenceRecorderDefinition>();
    }
}
