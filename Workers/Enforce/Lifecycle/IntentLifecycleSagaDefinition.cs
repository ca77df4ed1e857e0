using MassTransit;
using MeshBus.Hosting;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>The lifecycle saga's endpoint: concurrent across intents; conflicts on one intent retry (optimistic concurrency).</summary>
public sealed class IntentLifecycleSagaDefinition : SagaDefinition<IntentLifecycleState>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public IntentLifecycleSagaDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "intent-lifecycle");
        ConcurrentMessageLimit = 32;
    }

    /// <inheritdoc />
    protected override void ConfigureSaga(IReceiveEndpointConfigurator endpointConfigurator, ISagaConfigurator<IntentLifecycleState> sagaConfigurator, IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Handle<ConcurrencyException>();
            r.Intervals(10, 50, 100, 200, 500);
        });
}
