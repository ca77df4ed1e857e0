using MassTransit;
using MeshBus.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Workers.Authorize;

/// <summary>The authorize worker's composition: its services and its consumers.</summary>
public sealed class AuthorizeWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "authorize";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
    }
}
