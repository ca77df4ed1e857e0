using MassTransit;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Workers.Sync.Bridge;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MeshBus.Workers.Tests.Federation;

/// <summary>
/// The bridge binds its relay consumers from the <see cref="RelayTable"/> registered in the container, the one the
/// <see cref="FederationBridge"/> seals with: a route added there is bound, a route left out is not.
/// </summary>
public sealed class RelayTableRegistrationTests
{
    [Fact]
    public void A_registered_relay_tables_routes_are_the_ones_bound_on_the_bus()
    {
        var table = new RelayTable(RelayTable.Default.Routes.Where(r => r.MessageType != typeof(ExecutionHeartbeat)))
            .With(RelayRoute.For<AgentReleased>(TimeSpan.FromMinutes(1), RelayDestination.AllPeers, m => m.Domain));
        var services = new ServiceCollection();
        services.AddSingleton(table);

        services.AddMassTransit(x => new FederationBridgeWorker().ConfigureBus(x));

        Assert.Contains(services, d => d.ServiceType == typeof(RelayConsumer<AgentReleased>));
        Assert.DoesNotContain(services, d => d.ServiceType == typeof(RelayConsumer<ExecutionHeartbeat>));
        Assert.Contains(services, d => d.ServiceType == typeof(RelayConsumer<GrantIssued>));
    }

    [Fact]
    public void Without_a_registered_table_the_default_routes_are_bound()
    {
        var services = new ServiceCollection();

        services.AddMassTransit(x => new FederationBridgeWorker().ConfigureBus(x));

        Assert.All(RelayTable.Default.Routes, r => Assert.Contains(services, d => d.ServiceType == typeof(RelayConsumer<>).MakeGenericType(r.MessageType)));
        Assert.DoesNotContain(services, d => d.ServiceType == typeof(RelayConsumer<AgentReleased>));
    }

    [Fact]
    public void A_relay_table_registered_by_a_factory_is_refused_with_a_reason()
    {
        var services = new ServiceCollection();
        services.AddSingleton(_ => RelayTable.Default);

        var e = Assert.Throws<InvalidOperationException>(() => FederationBridgeWorker.RegisteredTable(services));
        Assert.Contains("registered as an instance", e.Message, StringComparison.Ordinal);
    }
}
