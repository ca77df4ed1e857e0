using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Hosting;

/// <summary>
/// One worker's composition: its services and its consumers/sagas. A worker process hosts one; the embedded mode and
/// tests host all four on one bus.
/// </summary>
public interface IMeshBusWorker
{
    /// <summary>Short name, e.g. <c>authorize</c> (used in logs, telemetry and the health endpoint).</summary>
    string Name { get; }

    /// <summary>Registers the worker's services and options.</summary>
    void ConfigureServices(IServiceCollection services, IConfiguration configuration);

    /// <summary>Registers the worker's consumers, sagas and their definitions.</summary>
    void ConfigureBus(IBusRegistrationConfigurator bus);
}
