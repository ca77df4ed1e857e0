using MassTransit;
using Microsoft.Extensions.Logging;
using Quartz;

namespace MeshBus.Persistence;

/// <summary>
/// Runs the Quartz scheduler exactly while the bus runs: a trigger that fires sends on the bus, so the scheduler
/// starts after the bus and shuts down (letting running sends finish) before the bus stops.
/// </summary>
internal sealed class QuartzLifetimeBusObserver(ISchedulerFactory schedulerFactory, ILogger<QuartzLifetimeBusObserver> logger) : IBusObserver
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
        var scheduler = await schedulerFactory.GetScheduler();
        await scheduler.Shutdown(waitForJobsToComplete: true);
    }

    public Task PostStop(IBus bus) => Task.CompletedTask;

    public Task StopFaulted(IBus bus, Exception exception) => Task.CompletedTask;
}
