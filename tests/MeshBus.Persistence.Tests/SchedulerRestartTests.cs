using MeshBus.Persistence.TestHost;
using MeshBus.TestSupport;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Persistence.Tests;

[Collection("servers")]
[Trait("Category", "Integration")]
public sealed class SchedulerRestartTests(PostgresFixture postgres, RabbitMqFixture rabbitMq, ITestOutputHelper output)
{
    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.Postgres)]
    public async Task A_message_due_while_the_host_was_killed_fires_once_after_restart_and_a_cancelled_one_never(StorageProvider provider)
    {
        var store = await TestStores.CreateAsync(provider, postgres);
        var schedulerQueue = $"persist-sched-{Guid.NewGuid():N}";
        await using var pings = await PingListener.StartAsync(rabbitMq.AmqpUri, $"persist-ping-{Guid.NewGuid():N}");
        string[] args =
        [
            "--provider", provider.ToString(), "--connection", store.ConnectionString, "--rabbitmq", rabbitMq.AmqpUri.ToString(),
            "--scheduler-queue", schedulerQueue, .. provider == StorageProvider.Postgres ? new[] { "--clustered" } : [],
        ];

        var first = await TestHostProcess.StartAsync("host-1", output, args);
        var scheduler = pings.Scheduler(schedulerQueue);
        var kept = Guid.NewGuid();
        var cancelled = Guid.NewGuid();
        // Far enough out that the host has stored it (slow on a busy machine) and is dead well before it is due.
        var due = DateTime.UtcNow.AddSeconds(10);
        var keptToken = (await scheduler.ScheduleSend(pings.Address, due, new Ping(kept))).TokenId;
        var cancelledToken = (await scheduler.ScheduleSend(pings.Address, due, new Ping(cancelled))).TokenId;
        await scheduler.CancelScheduledSend(pings.Address, cancelledToken);

        // Stored durably by the host before it dies: the kept one as a job, the cancelled one as a tombstone only.
        await Eventually.GetAsync(
            async () => (Jobs: await TestStores.JobsAsync(store, ScheduleMessageConsumer.JobGroup), Tombstones: await TestStores.JobsAsync(store, ScheduleMessageConsumer.TombstoneGroup)),
            s => s.Jobs.SetEquals([keptToken.ToString("N")]) && s.Tombstones.Contains(cancelledToken.ToString("N")),
            TimeSpan.FromSeconds(10), "the schedule and the cancellation to be stored");
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} stored; message due {due:HH:mm:ss.fff}");
        Assert.True(DateTime.UtcNow < due.AddSeconds(-1), "the host must die well before the message is due");

        first.Kill();
        var killedAt = DateTime.UtcNow;
        output.WriteLine($"{killedAt:HH:mm:ss.fff} host-1 killed; message due {due:HH:mm:ss.fff}");
        await Task.Delay(due.AddSeconds(1) - DateTime.UtcNow);
        Assert.Equal(0, pings.CountOf(kept));

        using var second = await TestHostProcess.StartAsync("host-2", output, args);
        var readyAt = DateTime.UtcNow;
        await Eventually.GetAsync(() => Task.FromResult(pings.CountOf(kept)), n => n > 0, TimeSpan.FromSeconds(20), "the kept message to fire");
        var arrivedAt = pings.Arrivals.First(a => a.PingId == kept).ArrivedAt;
        var downtime = readyAt - killedAt;
        var late = arrivedAt - due;
        output.WriteLine($"downtime {downtime.TotalMilliseconds:0} ms, fired {late.TotalMilliseconds:0} ms late, {(arrivedAt - readyAt).TotalMilliseconds:0} ms after restart");

        await Task.Delay(1500);
        Assert.Equal(1, pings.CountOf(kept));
        Assert.Equal(0, pings.CountOf(cancelled));
        Assert.True(late <= downtime + TimeSpan.FromSeconds(1), $"fired {late} late after {downtime} of downtime");
    }
}
