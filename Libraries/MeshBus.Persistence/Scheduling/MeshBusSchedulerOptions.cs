using Quartz;

namespace MeshBus.Persistence;

/// <summary>
/// Quartz settings for the MeshBus message scheduler. The defaults aim at "a trigger fires within about a second of
/// its time, and a dead node's triggers are taken over within a few seconds"; docs/operations.md explains each.
/// </summary>
public sealed class MeshBusSchedulerOptions
{
    /// <summary>The configuration section this class binds to.</summary>
    public const string SectionName = "Scheduler";

    /// <summary>The Quartz scheduler name; every replica of one fleet must use the same one.</summary>
    public string SchedulerName { get; set; } = "meshbus";

    /// <summary>This node's id in a cluster; <c>null</c> generates a unique one at start (host name and clock).</summary>
    public string? InstanceId { get; set; }

    /// <summary>
    /// How long the scheduler sleeps when nothing is due before it asks the store again. Bounds how late a trigger
    /// stored by another node can fire; a trigger stored by this node wakes it at once. Quartz's minimum is one second.
    /// </summary>
    public TimeSpan IdleWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a clustered node records that it is alive (and looks for dead peers).</summary>
    public TimeSpan CheckinInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long past a missed check-in a peer waits before it treats a node as dead and recovers its triggers.</summary>
    public TimeSpan CheckinMisfireThreshold { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How late a trigger may be before the misfire handler takes it over (it then fires at once).</summary>
    public TimeSpan MisfireThreshold { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Wait before retrying the database after a failure that is not transient.</summary>
    public TimeSpan DbRetryInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How many scheduled messages one node forwards at the same time.</summary>
    public int MaxConcurrency { get; set; } = 8;

    /// <summary>
    /// How long a cancellation is remembered, so that a schedule delivered after its own cancel (competing consumers,
    /// retries) is still dropped.
    /// </summary>
    public TimeSpan CancellationMemory { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Further Quartz settings, applied last (tests use it; production rarely needs it).</summary>
    public Action<IQuartzBuilder>? ConfigureQuartz { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(SchedulerName))
        {
            throw new ArgumentException($"{SectionName}:{nameof(SchedulerName)} is empty.");
        }

        if (IdleWait < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentException($"{SectionName}:{nameof(IdleWait)} {IdleWait} is below Quartz's minimum of one second.");
        }

        if (CheckinInterval <= TimeSpan.Zero || CheckinMisfireThreshold <= TimeSpan.Zero || MisfireThreshold <= TimeSpan.Zero || DbRetryInterval <= TimeSpan.Zero
            || CancellationMemory <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{SectionName}: check-in interval, check-in misfire threshold, misfire threshold, database retry interval and cancellation memory must be positive.");
        }

        if (MaxConcurrency < 1)
        {
            throw new ArgumentException($"{SectionName}:{nameof(MaxConcurrency)} must be at least 1.");
        }
    }
}
