using System.Net.Mime;
using MassTransit;
using MassTransit.Serialization;
using Microsoft.Extensions.Logging;
using Quartz;

namespace MeshBus.Persistence;

/// <summary>Fires a stored schedule: sends the stored envelope to its destination, keeping its message id.</summary>
internal sealed class ForwardScheduledMessageJob(IBus bus, ScheduledSendsInFlight inFlight, ILogger<ForwardScheduledMessageJob> logger) : IJob
{
    public const string DestinationKey = "Destination";
    public const string ContentTypeKey = "ContentType";
    public const string BodyKey = "Body";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken = default)
    {
        var destination = new Uri(Read(context, DestinationKey));
        var contentType = new ContentType(Read(context, ContentTypeKey));
        var body = Read(context, BodyKey);

        inFlight.Enter();
        try
        {
            await Send(destination, contentType, body, cancellationToken);
        }
        finally
        {
            inFlight.Leave();
        }

        logger.LogDebug("Fired schedule {TokenId} to {Destination} (scheduled {Scheduled:O}, recovering {Recovering})",
            context.JobDetail.Key.Name, destination, context.ScheduledFireTimeUtc, context.Recovering);
    }

    private async Task Send(Uri destination, ContentType contentType, string body, CancellationToken cancellationToken)
    {
        var endpoint = await bus.GetSendEndpoint(destination);
        await endpoint.Send(new SerializedMessageBody(), Pipe.Execute<SendContext>(sendContext =>
        {
            var deserializer = sendContext.Serialization.GetMessageDeserializer(contentType);
            var serializerContext = deserializer.Deserialize(deserializer.GetMessageBody(body), EmptyHeaders.Instance, destination);
            sendContext.MessageId = serializerContext.MessageId ?? sendContext.MessageId;
            sendContext.CorrelationId = serializerContext.CorrelationId;
            sendContext.ConversationId = serializerContext.ConversationId;
            sendContext.InitiatorId = serializerContext.InitiatorId;
            sendContext.Serializer = serializerContext.GetMessageSerializer();
        }), cancellationToken);
    }

    private static string Read(IJobExecutionContext context, string key) =>
        context.MergedJobDataMap.TryGetValue(key, out var value) && value is string text && text.Length > 0
            ? text
            : throw new JobExecutionException($"Scheduled job {context.JobDetail.Key} has no '{key}' in its data.");
}
