using MassTransit;
using MeshBus.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Workers.Enforce;

/// <summary>The enforce worker's composition: its services and its consumers.</summary>
public sealed class EnforceWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "enforce";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
    }
}
