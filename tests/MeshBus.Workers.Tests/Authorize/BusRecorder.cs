using System.Collections.Concurrent;
using MassTransit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>
/// Records what the bus sent, published and consumed, without blocking (the harness's message lists wait for
/// inactivity when enumerated).
/// </summary>
public sealed class BusRecorder : ISendObserver, IPublishObserver, IConsumeObserver
{
    public ConcurrentQueue<(Uri? Destination, object Message)> Sent { get; } = new();

    public ConcurrentQueue<object> Published { get; } = new();

    public ConcurrentQueue<(object Message, Exception? Fault)> Consumed { get; } = new();

    public IEnumerable<T> SentOf<T>() => Sent.Select(s => s.Message).OfType<T>();

    public IEnumerable<T> PublishedOf<T>() => Published.OfType<T>();

    public IEnumerable<(T Message, Exception? Fault)> ConsumedOf<T>() =>
        Consumed.Where(c => c.Message is T).Select(c => ((T)c.Message, c.Fault));

    public Task PreSend<T>(SendContext<T> context) where T : class => Task.CompletedTask;

    public Task PostSend<T>(SendContext<T> context) where T : class
    {
        Sent.Enqueue((context.DestinationAddress, context.Message));
        return Task.CompletedTask;
    }

    public Task SendFault<T>(SendContext<T> context, Exception exception) where T : class => Task.CompletedTask;

    public Task PrePublish<T>(PublishContext<T> context) where T : class => Task.CompletedTask;

    public Task PostPublish<T>(PublishContext<T> context) where T : class
    {
        Published.Enqueue(context.Message);
        return Task.CompletedTask;
    }

    public Task PublishFault<T>(PublishContext<T> context, Exception exception) where T : class => Task.CompletedTask;

    public Task PreConsume<T>(ConsumeContext<T> context) where T : class => Task.CompletedTask;

    public Task PostConsume<T>(ConsumeContext<T> context) where T : class
    {
        Consumed.Enqueue((context.Message, null));
        return Task.CompletedTask;
    }

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception) where T : class
    {
        Consumed.Enqueue((context.Message, exception));
        return Task.CompletedTask;
    }
}
