using MassTransit;
using MeshBus.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MeshBus.Hosting;

/// <summary>Transport set-up from the bound options.</summary>
internal static class MeshBusTransports
{
    /// <summary>The queue of the durable message scheduler on transports without a native one.</summary>
    public const string SchedulerQueue = MeshBusScheduling.DefaultQueueName;

    public static void UseInMemory(IBusRegistrationConfigurator x)
    {
        // In-memory: the delayed scheduler lives in the process (nothing survives it, like the transport itself).
        x.AddDelayedMessageScheduler();
        x.UsingInMemory((context, cfg) =>
        {
            AcceptPlainJson(cfg);
            cfg.UseDelayedMessageScheduler();
            cfg.ConfigureEndpoints(context);
        });
    }

    public static void UseRabbitMq(IBusRegistrationConfigurator x, string entityPrefix)
    {
        var schedulerQueue = entityPrefix + SchedulerQueue;
        // Schedules (saga timeouts, redeliveries) must survive restarts and be shared by replicas: Quartz with a
        // persistent store behind MassTransit's ScheduleMessage contract (Libraries/MeshBus.Persistence).
        x.AddMeshBusScheduler(schedulerQueue);
        x.UsingRabbitMq((context, cfg) =>
        {
            var o = context.GetRequiredService<IOptions<RabbitMqTransportOptions>>().Value;
            if (entityPrefix.Length > 0)
            {
                // First, before any message type's topology is built: every exchange named from a type gets the prefix.
                cfg.MessageTopology.SetEntityNameFormatter(new PrefixEntityNameFormatter(cfg.MessageTopology.EntityNameFormatter, entityPrefix));
            }

            cfg.Host(o.Host, o.Port, o.VirtualHost, h =>
            {
                h.Username(o.Username);
                h.Password(o.Password);
                h.PublisherConfirmation = true;
            });
            cfg.PrefetchCount = o.PrefetchCount;
            AcceptPlainJson(cfg);
            // RabbitMQ from Debian has no delayed-message plugin: schedules go to MeshBus's durable scheduler queue.
            cfg.UseMeshBusScheduler(schedulerQueue);
            cfg.ConfigureEndpoints(context);
        });
    }

    /// <summary>
    /// Besides MassTransit's envelope (<c>application/vnd.masstransit+json</c>, still what MeshBus sends), accept plain
    /// JSON (<c>application/json</c>) from publishers that are not .NET: the body is the message itself, its type from
    /// the <c>MT-MessageType</c> header when present (docs/wire-format.md).
    /// </summary>
    private static void AcceptPlainJson(IBusFactoryConfigurator cfg) =>
        cfg.UseRawJsonDeserializer(RawSerializerOptions.Default, isDefault: false);
}
