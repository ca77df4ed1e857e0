using MassTransit;
using MeshBus.Hosting;
using MeshBus.Ledger;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Lineage;

/// <summary>
/// The lineage worker: <see cref="GovernanceEventRecorder"/> appends the governance events to the domain's lineage log
/// (the same log Authorize appends its decisions to: <c>lineage.db</c> under the data directory, or PostgreSQL).
/// </summary>
public sealed class LineageWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "lineage";

    /// <summary>Registers the domain's lineage log once per process (shared when several workers are hosted together).</summary>
    public static void AddLineageLog(IServiceCollection services) =>
        services.TryAddSingleton<ILineageLog>(sp =>
        {
            var storage = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
            var options = new LineageLogOptions { TimeProvider = sp.GetRequiredService<TimeProvider>() };
            if (storage.Provider == StorageProvider.Postgres)
            {
                return LineageLogs.OpenPostgresAsync(storage.ConnectionString!, options).GetAwaiter().GetResult();
            }

            var dir = sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.DataDirectory;
            Directory.CreateDirectory(dir);
            return LineageLogs.OpenSqlite(Path.Combine(dir, "lineage.db"), options);
        });

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        AddLineageLog(services);
        services.AddOptions<LineageOptions>().BindConfiguration(LineageOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LineageOptions>, LineageOptionsValidator>());
        services.AddHostedService<LineageCheckpointer>();
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus) =>
        bus.AddConsumer<GovernanceEventRecorder, GovernanceEventRecorderDefinition>();
}
