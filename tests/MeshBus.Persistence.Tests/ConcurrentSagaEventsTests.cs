using System.Diagnostics;
using MassTransit;
using MeshBus.Persistence.TestHost;
using MeshBus.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Persistence.Tests;

[Collection("servers")]
[Trait("Category", "Integration")]
public sealed class ConcurrentSagaEventsTests(PostgresFixture postgres, RabbitMqFixture rabbitMq, ITestOutputHelper output)
{
    private const int Events = 300;
    private const int Replicas = 3;

    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.Postgres)]
    public async Task Hundreds_of_concurrent_events_on_one_saga_from_several_consumers_are_each_applied_exactly_once(StorageProvider provider)
    {
        var store = await TestStores.CreateAsync(provider, postgres);
        var queue = $"persist-saga-{Guid.NewGuid():N}";
        var replicas = new List<ServiceProvider>();
        try
        {
            // Three buses in one process stand in for three replicas competing for one queue.
            for (var i = 0; i < Replicas; i++)
            {
                replicas.Add(await StartReplicaAsync(store, queue));
            }

            var counterId = Guid.NewGuid();
            var eventIds = Enumerable.Range(0, Events).Select(_ => Guid.NewGuid()).ToArray();
            var clock = Stopwatch.StartNew();
            var endpoint = await replicas[0].GetRequiredService<IBus>().GetSendEndpoint(new Uri($"queue:{queue}"));
            await Task.WhenAll(eventIds.Select(e => endpoint.Send(new CounterIncremented(counterId, e, "owner-1"))));

            var reader = replicas[0].GetRequiredService<ISagaStateReader>();
            var state = await Eventually.GetAsync(() => reader.LoadAsync<CounterState>(counterId), s => s?.Applied.Count >= Events,
                TimeSpan.FromSeconds(90), $"{Events} events applied");
            output.WriteLine($"{provider}: {Events} events on one instance from {Replicas} consumers applied in {clock.ElapsedMilliseconds} ms");

            // Let anything still in flight land, so a doubly applied event would show.
            await Task.Delay(500);
            state = await reader.LoadAsync<CounterState>(counterId);
            Assert.Equal(Events, state!.Count);
            Assert.Equal(eventIds.Order(), state.Applied.Order());
            Assert.Equal([counterId], await replicas[0].GetRequiredService<ISagaIndex>().FindAsync<CounterState>("owner", "owner-1"));
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.GetRequiredService<IBusControl>().StopAsync();
                await replica.DisposeAsync();
            }
        }
    }

    private async Task<ServiceProvider> StartReplicaAsync(SqlStoreOptions store, string queue)
    {
        var services = new ServiceCollection();
        services.AddMassTransit(x =>
        {
            x.AddSagaStateMachine<CounterStateMachine, CounterState, CounterStateDefinition>()
                .Endpoint(e =>
                {
                    e.Name = queue;
                    e.PrefetchCount = 16;
                    e.ConcurrentMessageLimit = 8;
                })
                .SqlRepository(store);
            x.UsingRabbitMq((context, cfg) =>
            {
                cfg.Host(rabbitMq.AmqpUri);
                cfg.ConfigureEndpoints(context);
            });
        });
        var provider = services.BuildServiceProvider();
        await provider.GetRequiredService<IBusControl>().StartAsync();
        return provider;
    }
}
