using MeshBus.Persistence.TestHost;
using MeshBus.TestSupport;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Persistence.Tests;

[Collection("servers")]
[Trait("Category", "Integration")]
public sealed class SagaRestartTests(PostgresFixture postgres, RabbitMqFixture rabbitMq, ITestOutputHelper output)
{
    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.Postgres)]
    public async Task Saga_state_and_its_scheduled_timeout_survive_a_kill_mid_lifecycle_and_the_saga_continues(StorageProvider provider)
    {
        var store = await TestStores.CreateAsync(provider, postgres);
        var sagaQueue = $"persist-saga-{Guid.NewGuid():N}";
        string[] args =
        [
            "--provider", provider.ToString(), "--connection", store.ConnectionString, "--rabbitmq", rabbitMq.AmqpUri.ToString(),
            "--scheduler-queue", $"persist-sched-{Guid.NewGuid():N}", "--saga-queue", sagaQueue,
        ];
        var reader = new SqlSagaQueries([new SqlSagaBinding(SagaTypeName.Of<CounterState>(), new SqlDatabase(store))]);
        await using var client = await PingListener.StartAsync(rabbitMq.AmqpUri, $"persist-ping-{Guid.NewGuid():N}");
        var saga = await client.Bus.GetSendEndpoint(new Uri($"queue:{sagaQueue}"));
        var counterId = Guid.NewGuid();

        var first = await TestHostProcess.StartAsync("host-1", output, args);
        for (var i = 0; i < 3; i++)
        {
            await saga.Send(new CounterIncremented(counterId, Guid.NewGuid(), "owner-x"));
        }

        await Eventually.GetAsync(() => reader.LoadAsync<CounterState>(counterId), s => s?.Count == 3, TimeSpan.FromSeconds(20), "three events applied");
        await saga.Send(new CounterArmed(counterId, 6000));
        var armed = await Eventually.GetAsync(() => reader.LoadAsync<CounterState>(counterId), s => s?.TimeoutTokenId is not null,
            TimeSpan.FromSeconds(20), "the timeout to be scheduled");
        await Eventually.GetAsync(() => TestStores.JobsAsync(store, ScheduleMessageConsumer.JobGroup), jobs => jobs.Contains(armed!.TimeoutTokenId!.Value.ToString("N")),
            TimeSpan.FromSeconds(20), "the timeout to be stored");

        first.Kill();
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} host-1 killed in state {armed!.CurrentState} with count {armed.Count}");
        // Events sent while no host runs wait in the queue.
        await saga.Send(new CounterIncremented(counterId, Guid.NewGuid()));
        await saga.Send(new CounterIncremented(counterId, Guid.NewGuid()));

        using var second = await TestHostProcess.StartAsync("host-2", output, args);
        var final = await Eventually.GetAsync(() => reader.LoadAsync<CounterState>(counterId), s => s?.CurrentState == "TimedOut" && s.Count == 5,
            TimeSpan.FromSeconds(40), "the saga to count on and time out");

        Assert.Equal(5, final!.Applied.Distinct().Count());
        Assert.NotNull(final.TimedOutAt);
        Assert.Equal([counterId], await reader.FindAsync<CounterState>("state", "TimedOut"));
        Assert.Equal([counterId], await reader.FindAsync<CounterState>("owner", "owner-x"));
    }
}
