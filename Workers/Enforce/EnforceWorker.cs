using MassTransit;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Workers.Enforce.Halts;
using MeshBus.Workers.Enforce.Lifecycle;
using MeshBus.Workers.Enforce.Reports;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

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

    /// <summary>The saga store derived from the MeshBus storage settings: <c>enforce.db</c> under the data directory, or PostgreSQL.</summary>
    public static SqlStoreOptions StoreFrom(IConfiguration configuration)
    {
        var storage = configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
        if (storage.Provider == StorageProvider.Postgres)
        {
            return new SqlStoreOptions { Provider = SqlProvider.Postgres, ConnectionString = storage.ConnectionString ?? "" };
        }

        var mesh = configuration.GetSection(MeshBusOptions.Section).Get<MeshBusOptions>() ?? new MeshBusOptions();
        Directory.CreateDirectory(mesh.DataDirectory);
        return new SqlStoreOptions { Provider = SqlProvider.Sqlite, ConnectionString = $"Data Source={Path.Combine(mesh.DataDirectory, "enforce.db")}" };
    }

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<EnforceOptions>().BindConfiguration(EnforceOptions.Section);
        _store ??= StoreFrom(configuration);
        services.TryAddSingleton<ExecutionReportVerifier>();
        services.TryAddSingleton<HaltSigner>();
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
        var store = _store ?? throw new InvalidOperationException("EnforceWorker.ConfigureServices must run before ConfigureBus");
        bus.AddSagaStateMachine<IntentLifecycleStateMachine, IntentLifecycleState, IntentLifecycleSagaDefinition>()
            .SqlRepository(store);
        bus.AddConsumer<HaltExecutionConsumer, HaltExecutionConsumerDefinition>();
        bus.AddConsumer<ReportIngressConsumer, ReportIngressConsumerDefinition>();
    }
}
