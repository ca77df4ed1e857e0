using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Quartz;

namespace MeshBus.Persistence;

/// <summary>
/// Durable message scheduling for MassTransit on Quartz: <c>Schedule*</c> calls become <see cref="MassTransit.Scheduling.ScheduleMessage"/>
/// commands on a queue, whose consumer stores them as Quartz triggers in the SQL job store; the trigger re-sends the
/// stored message when it fires, from whichever node holds it.
/// </summary>
public static class MeshBusScheduling
{
    /// <summary>The queue the scheduling commands go to unless another is named.</summary>
    public const string DefaultQueueName = "meshbus-scheduler";

    /// <summary>
    /// Adds Quartz with a persistent job store in <paramref name="store"/> (tables created if missing). With
    /// <paramref name="clustered"/> (PostgreSQL only) the replicas sharing the database share one schedule and recover
    /// the triggers of a node that stops checking in. The scheduler runs while the bus runs (see
    /// <see cref="AddMeshBusScheduler"/>).
    /// </summary>
    /// <exception cref="ArgumentException">An option cannot work, or clustering was asked of SQLite.</exception>
    public static IServiceCollection AddMeshBusQuartz(this IServiceCollection services, SqlStoreOptions store, bool clustered,
        Action<MeshBusSchedulerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(store);
        store.Validate();
        if (clustered && store.Provider == StorageProvider.Sqlite)
        {
            throw new ArgumentException("A clustered scheduler needs PostgreSQL: SQLite is one process's file.", nameof(clustered));
        }

        var options = new MeshBusSchedulerOptions();
        configure?.Invoke(options);
        options.Validate();
        services.AddSingleton(options);
        services.AddSingleton<ScheduledSendsInFlight>();
        services.AddQuartz(q =>
        {
            q.ConfigureScheduler(s =>
            {
                s.InstanceName = options.SchedulerName;
                s.IdleWaitTime = options.IdleWait;
                if (options.InstanceId is not null)
                {
                    s.InstanceId = options.InstanceId;
                }
            });
            q.UseDefaultThreadPool(options.MaxConcurrency);
            q.AddJobType<ForwardScheduledMessageJob>();
            q.AddJobType<ExpireTombstoneJob>();
            q.UsePersistentStore(p =>
            {
                if (store.Provider == StorageProvider.Postgres)
                {
                    p.UsePostgres(store.ConnectionString);
                }
                else
                {
                    p.UseSqlite(store.ConnectionString);
                }

                p.ProvisionSchema();
                p.ConfigureStore(s =>
                {
                    s.MisfireThreshold = options.MisfireThreshold;
                    s.MisfireHandlerFrequency = options.MisfireHandlerInterval;
                    s.DbRetryInterval = options.DbRetryInterval;
                    s.StoreJobDataAsStrings = true;
                    if (store.QuartzTablePrefix is not null)
                    {
                        s.TablePrefix = store.QuartzTablePrefix;
                    }
                });
                if (clustered)
                {
                    p.UseClustering(c =>
                    {
                        c.CheckinInterval = options.CheckinInterval;
                        c.CheckinMisfireThreshold = options.CheckinMisfireThreshold;
                    });
                }
            });
            options.ConfigureQuartz?.Invoke(q);
        });
        return services;
    }

    /// <summary>
    /// Receives <see cref="MassTransit.Scheduling.ScheduleMessage"/> and <see cref="MassTransit.Scheduling.CancelScheduledMessage"/>
    /// on <paramref name="queueName"/> (competing consumers across replicas), registers <see cref="IMessageScheduler"/>,
    /// and starts the Quartz scheduler when the bus has started (stops it before the bus stops). Needs
    /// <see cref="AddMeshBusQuartz"/>.
    /// </summary>
    public static void AddMeshBusScheduler(this IBusRegistrationConfigurator configurator, string queueName = DefaultQueueName)
    {
        ArgumentNullException.ThrowIfNull(configurator);
        ArgumentException.ThrowIfNullOrWhiteSpace(queueName);
        configurator.AddSingleton(new SchedulerEndpoint(queueName));
        configurator.AddConsumer<ScheduleMessageConsumer, ScheduleMessageConsumerDefinition>();
        configurator.AddMessageScheduler(new Uri($"queue:{queueName}"));
        configurator.AddBusObserver<QuartzLifetimeBusObserver>();
    }

    /// <summary>Makes <c>Schedule*</c> on this bus (sagas included) send its commands to <paramref name="queueName"/>.</summary>
    public static void UseMeshBusScheduler(this IBusFactoryConfigurator configurator, string queueName = DefaultQueueName)
    {
        ArgumentNullException.ThrowIfNull(configurator);
        ArgumentException.ThrowIfNullOrWhiteSpace(queueName);
        configurator.UseMessageScheduler(new Uri($"queue:{queueName}"));
    }
}

/// <summary>The queue the scheduler consumer listens on.</summary>
internal sealed record SchedulerEndpoint(string QueueName);
