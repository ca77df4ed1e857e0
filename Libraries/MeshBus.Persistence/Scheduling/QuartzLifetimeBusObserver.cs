using MassTransit;
using Microsoft.Extensions.Logging;
using Quartz;

namespace MeshBus.Persistence;

/// <summary>
/// Runs the Quartz scheduler exactly while the bus runs: a trigger that fires sends on the bus, so the scheduler
/// starts after the bus, stops firing when the bus begins to stop, and shuts down (letting running sends finish) once
/// the endpoints no longer consume.
/// </summary>
internal sealed class QuartzLifetimeBusObserver(ISchedulerFactory schedulerFactory, ScheduledSendsInFlight inFlight, ILogger<QuartzLifetimeBusObserver> logger) : IBusObserver
{
    public void PostCreate(IBus bus)
    {
    }

    public void CreateFaulted(Exception exception)
    {
    }

    public Task PreStart(IBus bus) => Task.CompletedTask;

    public async Task PostStart(IBus bus, Task<BusReady> busReady)
    {
        var scheduler = await schedulerFactory.GetScheduler();
        await scheduler.Start();
        logger.LogInformation("Quartz scheduler {Name}/{InstanceId} started", scheduler.SchedulerName, scheduler.SchedulerInstanceId);
    }

    public Task StartFaulted(IBus bus, Exception exception) => Task.CompletedTask;

    public async Task PreStop(IBus bus)
    {
        // Stop firing, but keep the job store open: the receive endpoints still consume until the bus stops, and a
        // ScheduleMessage (a saga timeout, a redelivery) consumed meanwhile must still be stored. Shutting Quartz down
        // here failed those with "The Scheduler has been Shutdown" and sent them to the error queue.
        var scheduler = await schedulerFactory.GetScheduler();
        await scheduler.Standby();

        // A trigger already firing sends on the bus: let it finish while the bus can still send (bounded, so a send
        // stuck on a lost broker cannot hold the shutdown; its trigger is then recovered by another replica).
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (inFlight.Count > 0 && waited.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
        }
    }

    public async Task PostStop(IBus bus)
    {
        // The endpoints have stopped consuming; a trigger that was firing when standby began has finished its send
        // (PreStop waited for it), and what has not fired stays in the store for the other replicas.
        var scheduler = await schedulerFactory.GetScheduler();
        await scheduler.Shutdown(waitForJobsToComplete: true);
        logger.LogInformation("Quartz scheduler {Name}/{InstanceId} shut down", scheduler.SchedulerName, scheduler.SchedulerInstanceId);
    }

    public Task StopFaulted(IBus bus, Exception exception) => Task.CompletedTask;
}

/// <summary>How many scheduled messages this process is sending right now (stopping waits for them while the bus can send).</summary>
internal sealed class ScheduledSendsInFlight
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Enter() => Interlocked.Increment(ref _count);

    public void Leave() => Interlocked.Decrement(ref _count);
}
