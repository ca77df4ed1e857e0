using MassTransit;
using MeshBus.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Workers.Lineage;

/// <summary>The lineage worker's composition: its services and its consumers.</summary>
public sealed class LineageWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "lineage";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
    }
}
