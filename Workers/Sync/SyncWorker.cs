using MassTransit;
using MeshBus.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Workers.Sync;

/// <summary>The sync worker's composition: its services and its consumers.</summary>
public sealed class SyncWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "sync";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
    }
}
