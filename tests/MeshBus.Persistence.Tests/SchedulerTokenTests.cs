using MassTransit;
using MassTransit.Scheduling;
using MeshBus.Persistence.TestHost;
using MeshBus.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MeshBus.Persistence.Tests;

/// <summary>Token semantics of the scheduler, with the scheduler in this process on SQLite.</summary>
[Collection("servers")]
[Trait("Category", "Integration")]
public sealed class SchedulerTokenTests(PostgresFixture postgres, RabbitMqFixture rabbitMq) : IAsyncLifetime
{
    private readonly string _schedulerQueue = $"persist-sched-{Guid.NewGuid():N}";
    private PingListener _pings = null!;
    private ServiceProvider _scheduler = null!;
    private SqlStoreOptions _store = null!;

    public async Task InitializeAsync()
    {
        _store = await TestStores.CreateAsync(StorageProvider.Sqlite, postgres);
        _pings = await PingListener.StartAsync(rabbitMq.AmqpUri, $"persist-ping-{Guid.NewGuid():N}");
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMeshBusQuartz(_store, clustered: false, o => o.SchedulerName = "tokens-" + Guid.NewGuid().ToString("N"));
        services.AddMassTransit(x =>
        {
            x.AddMeshBusScheduler(_schedulerQueue);
            x.UsingRabbitMq((context, cfg) =>
            {
                cfg.Host(rabbitMq.AmqpUri);
                cfg.ConfigureEndpoints(context);
            });
        });
        _scheduler = services.BuildServiceProvider();
        await _scheduler.GetRequiredService<IBusControl>().StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _scheduler.GetRequiredService<IBusControl>().StopAsync();
        await _scheduler.DisposeAsync();
        await _pings.DisposeAsync();
    }

    [Fact]
    public async Task Scheduling_the_same_token_again_replaces_the_earlier_schedule()
    {
        var token = Guid.NewGuid();
        var replaced = Guid.NewGuid();
        var replacement = Guid.NewGuid();

        await ScheduleAsync(token, DateTime.UtcNow.AddSeconds(2), replaced);
        await WaitStoredAsync(token);
        await ScheduleAsync(token, DateTime.UtcNow.AddSeconds(2.5), replacement);

        await Eventually.GetAsync(() => Task.FromResult(_pings.CountOf(replacement)), n => n > 0, TimeSpan.FromSeconds(20), "the replacement to fire");
        await LaterTriggerFiredAsync();
        Assert.Equal(1, _pings.CountOf(replacement));
        Assert.Equal(0, _pings.CountOf(replaced));
    }

    [Fact]
    public async Task A_cancel_delivered_before_its_schedule_still_keeps_the_message_from_firing()
    {
        var token = Guid.NewGuid();
        var cancelled = Guid.NewGuid();
        var control = Guid.NewGuid();
        var endpoint = await _pings.Bus.GetSendEndpoint(new Uri($"queue:{_schedulerQueue}"));

        await endpoint.Send<CancelScheduledMessage>(new { CorrelationId = Guid.NewGuid(), TokenId = token, Timestamp = DateTime.UtcNow });
        await Eventually.GetAsync(() => TestStores.JobsAsync(_store, ScheduleMessageConsumer.TombstoneGroup), t => t.Contains(token.ToString("N")),
            TimeSpan.FromSeconds(20), "the tombstone");
        await ScheduleAsync(token, DateTime.UtcNow.AddSeconds(1), cancelled);
        await ScheduleAsync(Guid.NewGuid(), DateTime.UtcNow.AddSeconds(1), control);

        await Eventually.GetAsync(() => Task.FromResult(_pings.CountOf(control)), n => n > 0, TimeSpan.FromSeconds(20), "the control message to fire");
        await LaterTriggerFiredAsync();
        Assert.Equal(0, _pings.CountOf(cancelled));
        Assert.DoesNotContain(token.ToString("N"), await TestStores.JobsAsync(_store, ScheduleMessageConsumer.JobGroup));
    }

    /// <summary>
    /// The positive signal before a "nothing else fired" assertion: a probe scheduled after every trigger of the test
    /// has fired, so the scheduler had its chance to fire anything it still held.
    /// </summary>
    private async Task LaterTriggerFiredAsync()
    {
        var probe = Guid.NewGuid();
        await ScheduleAsync(Guid.NewGuid(), DateTime.UtcNow.AddSeconds(1), probe);
        await Eventually.GetAsync(() => Task.FromResult(_pings.CountOf(probe)), n => n > 0, TimeSpan.FromSeconds(20), "a later probe to fire");
    }

    private async Task ScheduleAsync(Guid token, DateTime at, Guid pingId)
    {
        var endpoint = await _pings.Bus.GetSendEndpoint(new Uri($"queue:{_schedulerQueue}"));
        await endpoint.Send<ScheduleMessage>(new
        {
            CorrelationId = token,
            ScheduledTime = at,
            PayloadType = new[] { MessageUrn.ForTypeString<Ping>() },
            Destination = _pings.Address,
            Payload = new Ping(pingId),
        });
    }

    private Task WaitStoredAsync(Guid token) =>
        Eventually.GetAsync(() => TestStores.JobsAsync(_store, ScheduleMessageConsumer.JobGroup), t => t.Contains(token.ToString("N")),
            TimeSpan.FromSeconds(20), "the schedule to be stored");
}
