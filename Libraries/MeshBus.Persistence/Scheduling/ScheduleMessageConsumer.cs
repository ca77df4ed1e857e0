using MassTransit;
using MassTransit.Context;
using MassTransit.Scheduling;
using Microsoft.Extensions.Logging;
using Quartz;

namespace MeshBus.Persistence;

/// <summary>
/// Stores each scheduled message as a Quartz job keyed by its schedule token, so scheduling the same token again
/// replaces the earlier trigger and cancelling deletes it.
/// </summary>
/// <remarks>
/// Competing consumers and retries can deliver a token's cancel before its schedule. A cancel therefore also leaves a
/// tombstone for the token (a job that expires after <see cref="MeshBusSchedulerOptions.CancellationMemory"/>), and a
/// schedule that meets a tombstone, before or right after it is stored, is dropped. MassTransit takes a fresh token
/// for every schedule, so a cancelled token is never legitimately scheduled again.
/// </remarks>
internal sealed class ScheduleMessageConsumer(ISchedulerFactory schedulerFactory, MeshBusSchedulerOptions options, ILogger<ScheduleMessageConsumer> logger) :
    IConsumer<ScheduleMessage>, IConsumer<CancelScheduledMessage>
{
    public const string JobGroup = "meshbus-scheduled";
    public const string TombstoneGroup = "meshbus-cancelled";

    // Sending fails only while the broker is away: keep trying, backing off to a minute, for about an hour.
    private static readonly RetryPolicy SendRetry = RetryPolicy.Exponential(70, TimeSpan.FromSeconds(1), 2, TimeSpan.FromMinutes(1));

    public static JobKey JobKeyFor(Guid tokenId) => new(tokenId.ToString("N"), JobGroup);

    public static JobKey TombstoneFor(Guid tokenId) => new(tokenId.ToString("N"), TombstoneGroup);

    public async Task Consume(ConsumeContext<ScheduleMessage> context)
    {
        var message = context.Message;
        if (message.Destination is null || message.Payload is null || message.PayloadType is null || message.PayloadType.Length == 0)
        {
            throw new ArgumentException($"ScheduleMessage {message.CorrelationId} has no destination or payload.");
        }

        // The payload is re-serialized as a complete envelope of its own message types, which the job sends verbatim.
        var body = context.SerializerContext
            .GetMessageSerializer(message.Payload, message.PayloadType)
            .GetMessageBody(new MessageSendContext<ScheduleMessage>(message));
        var contentType = context.ReceiveContext.ContentType?.ToString() ?? "application/vnd.masstransit+json";
        var fireAt = new DateTimeOffset(DateTime.SpecifyKind(message.ScheduledTime, DateTimeKind.Utc));

        var key = JobKeyFor(message.CorrelationId);
        var job = JobBuilder.Create<ForwardScheduledMessageJob>()
            .WithIdentity(key)
            .RequestRecovery()
            .UsingJobData(ForwardScheduledMessageJob.DestinationKey, message.Destination.ToString())
            .UsingJobData(ForwardScheduledMessageJob.ContentTypeKey, contentType)
            .UsingJobData(ForwardScheduledMessageJob.BodyKey, body.GetString())
            .Build();
        var trigger = TriggerBuilder.Create(TimeProvider.System)
            .WithIdentity(new TriggerKey(key.Name, JobGroup))
            .ForJob(key)
            .StartAt(fireAt)
            .WithSchedule(SimpleScheduleBuilder.Create().WithMisfireInstruction(SimpleTriggerMisfireInstruction.FireNow))
            .WithRetryPolicy(SendRetry)
            .Build();

        var scheduler = await schedulerFactory.GetScheduler(context.CancellationToken);
        var tombstone = TombstoneFor(message.CorrelationId);
        if (await scheduler.Exists(tombstone, context.CancellationToken))
        {
            logger.LogInformation("Schedule {TokenId} arrived after its cancellation and is dropped", message.CorrelationId);
            return;
        }

        await scheduler.ScheduleJob(job, trigger, new ScheduleJobOptions { Replace = true }, context.CancellationToken);

        // A cancel that ran between the check and the store found nothing to delete: look again now that it is stored.
        if (await scheduler.Exists(tombstone, context.CancellationToken))
        {
            await scheduler.DeleteJob(key, context.CancellationToken);
            logger.LogInformation("Schedule {TokenId} was cancelled while it was being stored and is dropped", message.CorrelationId);
            return;
        }

        logger.LogDebug("Scheduled {TokenId} for {FireAt:O} to {Destination}", message.CorrelationId, fireAt, message.Destination);
    }

    public async Task Consume(ConsumeContext<CancelScheduledMessage> context)
    {
        var tokenId = context.Message.TokenId;
        var scheduler = await schedulerFactory.GetScheduler(context.CancellationToken);

        // Tombstone first, then delete: a schedule stored at any point in between sees the tombstone afterwards.
        var tombstone = JobBuilder.Create<ExpireTombstoneJob>().WithIdentity(TombstoneFor(tokenId)).Build();
        var expiry = TriggerBuilder.Create(TimeProvider.System)
            .WithIdentity(new TriggerKey(tokenId.ToString("N"), TombstoneGroup))
            .ForJob(tombstone.Key)
            .StartAt(DateTimeOffset.UtcNow + options.CancellationMemory)
            .WithSchedule(SimpleScheduleBuilder.Create().WithMisfireInstruction(SimpleTriggerMisfireInstruction.FireNow))
            .Build();
        await scheduler.ScheduleJob(tombstone, expiry, new ScheduleJobOptions { Replace = true }, context.CancellationToken);

        var deleted = await scheduler.DeleteJob(JobKeyFor(tokenId), context.CancellationToken);
        logger.LogDebug("Cancelled schedule {TokenId}: {Outcome}", tokenId, deleted ? "removed" : "not stored (fired already, or not arrived yet)");
    }
}

/// <summary>Endpoint, concurrency and retry for the scheduler queue.</summary>
internal sealed class ScheduleMessageConsumerDefinition : ConsumerDefinition<ScheduleMessageConsumer>
{
    public ScheduleMessageConsumerDefinition(SchedulerEndpoint endpoint)
    {
        EndpointName = endpoint.QueueName;
        ConcurrentMessageLimit = 8;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<ScheduleMessageConsumer> consumerConfigurator, IRegistrationContext context)
    {
        // The job store can be briefly unavailable (failover, lock contention): retry before the error queue.
        endpointConfigurator.UseMessageRetry(r => r.Intervals(100, 500, 1000, 2000, 5000));
    }
}

/// <summary>Does nothing: its trigger only exists to remove a cancellation tombstone once it has served its time.</summary>
internal sealed class ExpireTombstoneJob : IJob
{
    public ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
}
