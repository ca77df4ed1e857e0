using MeshBus.Persistence.TestHost;
using MeshBus.TestSupport;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Persistence.Tests;

[Collection("servers")]
[Trait("Category", "Integration")]
public sealed class SchedulerFailoverTests(PostgresFixture postgres, RabbitMqFixture rabbitMq, ITestOutputHelper output)
{
    [Fact]
    public async Task Two_replicas_fire_each_message_once_and_the_survivor_fires_what_a_dead_replica_held()
    {
        var store = await TestStores.CreateAsync(StorageProvider.Postgres, postgres);
        var schedulerQueue = $"persist-sched-{Guid.NewGuid():N}";
        await using var pings = await PingListener.StartAsync(rabbitMq.AmqpUri, $"persist-ping-{Guid.NewGuid():N}");

        // Each replica holds a fired trigger (EXECUTING) for a few seconds before sending, which gives the test a
        // window to kill the replica that holds it.
        string[] Args(string id) =>
        [
            "--provider", "Postgres", "--connection", store.ConnectionString, "--rabbitmq", rabbitMq.AmqpUri.ToString(),
            "--scheduler-queue", schedulerQueue, "--clustered", "--instance-id", id, "--hold", "3000",
        ];
        var started = await Task.WhenAll(
            TestHostProcess.StartAsync("replica-a", output, Args("replica-a")),
            TestHostProcess.StartAsync("replica-b", output, Args("replica-b")));
        using var replicaA = started[0];
        using var replicaB = started[1];
        var scheduler = pings.Scheduler(schedulerQueue);

        // Both alive: each message fires once.
        var first = Enumerable.Range(0, 4).Select(_ => Guid.NewGuid()).ToArray();
        var due = DateTime.UtcNow.AddSeconds(5);
        await Task.WhenAll(first.Select(id => scheduler.ScheduleSend(pings.Address, due, new Ping(id))));
        await Eventually.GetAsync(() => Task.FromResult(first.Count(id => pings.CountOf(id) > 0)), n => n == first.Length,
            TimeSpan.FromSeconds(30), "the first batch to fire");

        // Next batch: kill whichever replica has taken the triggers, before it has sent them.
        var second = Enumerable.Range(0, 4).Select(_ => Guid.NewGuid()).ToArray();
        due = DateTime.UtcNow.AddSeconds(6);
        var tokens = (await Task.WhenAll(second.Select(id => scheduler.ScheduleSend(pings.Address, due, new Ping(id)))))
            .Select(s => $"'{s.TokenId:N}'");
        var held = await Eventually.GetAsync(
            () => TestStores.QueryAsync(store, $"SELECT instance_name, state FROM qrtz_fired_triggers WHERE job_name IN ({string.Join(',', tokens)})"),
            rows => rows.Count > 0, TimeSpan.FromSeconds(20), "a replica to take the second batch");
        var holder = held[0][0] == replicaA.Name ? replicaA : replicaB;
        var survivor = holder == replicaA ? replicaB : replicaA;
        holder.Kill();
        var killedAt = DateTime.UtcNow;
        output.WriteLine($"{killedAt:HH:mm:ss.fff} killed {holder.Name} holding {held.Count} trigger(s) due {due:HH:mm:ss.fff}; {survivor.Name} survives");

        await Eventually.GetAsync(() => Task.FromResult(second.Count(id => pings.CountOf(id) > 0)), n => n == second.Length,
            TimeSpan.FromSeconds(40), $"{survivor.Name} to fire the second batch");
        var lastArrival = pings.Arrivals.Where(a => second.Contains(a.PingId)).Max(a => a.ArrivedAt);
        output.WriteLine($"second batch fired by {lastArrival:HH:mm:ss.fff}, {(lastArrival - due).TotalMilliseconds:0} ms after due");

        await Task.Delay(2000);
        Assert.All(second, id => Assert.DoesNotContain(pings.Arrivals, a => a.PingId == id && a.ArrivedAt < killedAt));
        Assert.All(first.Concat(second), id => Assert.Equal(1, pings.CountOf(id)));
    }
}
