using MassTransit;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Workers.Enforce.Halts;
using MeshBus.Workers.Enforce.Lifecycle;
using MeshBus.Workers.Enforce.Reports;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Enforce;

/// <summary>
/// The enforce worker: the intent-lifecycle saga (<see cref="IntentLifecycleStateMachine"/>) stored durably with its
/// executions index, the halt router (<see cref="HaltExecutionConsumer"/>), and the agent ingress of execution reports
/// (<see cref="ReportIngressConsumer"/>, checked by <see cref="ExecutionReportVerifier"/>).
/// </summary>
public sealed class EnforceWorker : IMeshBusWorker
{
    private SqlStoreOptions? _store;

    /// <summary>The worker with storage from configuration (<c>Storage:*</c>, <c>MeshBus:DataDirectory</c>).</summary>
    public EnforceWorker()
    {
    }

    /// <summary>The worker with an explicit saga store (tests, embedded hosts).</summary>
    public EnforceWorker(SqlStoreOptions store) => _store = store;

    /// <inheritdoc />
    public string Name => "enforce";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<EnforceOptions>().BindConfiguration(EnforceOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EnforceOptions>, EnforceOptionsValidator>());
        // Quarantines carry authority: signed with the domain's envelope key (loaded when the first one is made).
        services.TryAddSingleton(sp => GovernanceSigner.FromDirectory(
            sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory, sp.GetRequiredService<TimeProvider>()));
        // The saga repository is configured while services are added, so its store is read from configuration here;
        // the setup itself (engine, file, database) is the hosting's one (MeshBusStorage).
        _store ??= MeshBusStorage.SqlStore(configuration, "enforce.db");
        services.TryAddSingleton<ExecutionReportVerifier>();
        services.TryAddSingleton<HaltSigner>();
        services.TryAddSingleton<ReevaluatedEpoch>();
        services.TryAddSingleton(sp => EnforceGovernanceVerifier.FromDirectory(sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory));
        services.AddHostedService<ExecutionStateGauge>();
        services.TryAddSingleton<SagaRetentionSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<SagaRetentionSweeper>());
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
        var store = _store ?? throw new InvalidOperationException("EnforceWorker.ConfigureServices must run before ConfigureBus");
        bus.AddSagaStateMachine<IntentLifecycleStateMachine, IntentLifecycleState, IntentLifecycleSagaDefinition>()
            .SqlRepository(store);
        bus.AddConsumer<HaltExecutionConsumer, HaltExecutionConsumerDefinition>();
        bus.AddConsumer<PolicyReevaluationConsumer, PolicyReevaluationConsumerDefinition>();
        bus.AddConsumer<ReportIngressConsumer, ReportIngressConsumerDefinition>();
    }
}
