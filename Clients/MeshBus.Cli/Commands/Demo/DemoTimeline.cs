using System.Collections.Concurrent;
using System.Reflection;
using MassTransit;
using MeshBus.Contracts;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Cli.Commands.Demo;

/// <summary>One message seen on a domain's bus, in the order it was seen.</summary>
/// <param name="At">When it was published or sent.</param>
/// <param name="Domain">The domain whose bus carried it.</param>
/// <param name="Event">The message type's name (the contract's name, e.g. <c>GrantDenied</c>; <c>Fault&lt;T&gt;</c> for a fault).</param>
/// <param name="IntentId">The intent it concerns, or null.</param>
/// <param name="Reason">Its denial, lapse or halt reason (<c>SyncStale</c>, ...), or null.</param>
public sealed record DemoTimelineEntry(DateTimeOffset At, string Domain, string Event, string? IntentId, string? Reason);

/// <summary>
/// The demo's <c>timeline</c>: a MassTransit publish and send observer on each domain's bus records every MeshBus message
/// (contracts and the workers' own messages, faults included) as it leaves a publisher, from the moment the host starts.
/// A message crossing the bridge is seen twice: on the sender's bus, then published again on the receiver's. The same
/// message id on one bus is recorded once (a publish may also pass the send pipe).
/// </summary>
public sealed class DemoTimeline
{
    private static readonly ConcurrentDictionary<Type, (PropertyInfo? IntentId, PropertyInfo? Reason)> Properties = new();
    private readonly List<DemoTimelineEntry> _entries = [];
    private readonly HashSet<(string Domain, Guid MessageId)> _seen = [];
    private readonly Lock _gate = new();

    /// <summary>Every entry so far, in order.</summary>
    public IReadOnlyList<DemoTimelineEntry> Entries
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>Registers this timeline's observer for <paramref name="domain"/> in a host's services.</summary>
    public void Observe(IServiceCollection services, string domain)
    {
        var observer = new Observer(this, domain);
        services.AddPublishObserver(_ => observer);
        services.AddSendObserver(_ => observer);
    }

    private void Record<T>(string domain, Guid? messageId, T message)
        where T : class
    {
        var type = message.GetType();
        var name = NameOf(type);
        if (name is null)
        {
            return;
        }

        var (intentProperty, reasonProperty) = Properties.GetOrAdd(type, t => (
            t.GetProperty("IntentId") is { } p && (p.PropertyType == typeof(Guid) || p.PropertyType == typeof(Guid?)) ? p : null,
            t.GetProperty("Reason") is { } r && (r.PropertyType == typeof(GovernanceReason) || r.PropertyType == typeof(GovernanceReason?)) ? r : null));
        var intentId = intentProperty?.GetValue(message) is Guid id ? id.ToString("D") : null;
        var reason = reasonProperty?.GetValue(message)?.ToString();
        lock (_gate)
        {
            if (messageId is { } mid && !_seen.Add((domain, mid)))
            {
                return;
            }

            _entries.Add(new DemoTimelineEntry(DateTimeOffset.UtcNow, domain, name, intentId, reason));
        }
    }

    /// <summary>The name recorded for a message type: MeshBus messages by their name, faults as <c>Fault&lt;T&gt;</c>; null for MassTransit's own.</summary>
    private static string? NameOf(Type type)
    {
        if (type.Namespace?.StartsWith("MeshBus", StringComparison.Ordinal) == true && !type.IsGenericType)
        {
            return type.Name;
        }

        var fault = type.IsGenericType && type.Name.StartsWith("Fault", StringComparison.Ordinal)
            ? type.GetGenericArguments()[0]
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(Fault<>))?.GetGenericArguments()[0];
        return fault is not null && NameOf(fault) is { } inner ? $"Fault<{inner}>" : null;
    }

    private sealed class Observer(DemoTimeline timeline, string domain) : IPublishObserver, ISendObserver
    {
        public Task PrePublish<T>(PublishContext<T> context)
            where T : class
        {
            timeline.Record(domain, context.MessageId, context.Message);
            return Task.CompletedTask;
        }

        public Task PostPublish<T>(PublishContext<T> context)
            where T : class => Task.CompletedTask;

        public Task PublishFault<T>(PublishContext<T> context, Exception exception)
            where T : class => Task.CompletedTask;

        public Task PreSend<T>(SendContext<T> context)
            where T : class
        {
            timeline.Record(domain, context.MessageId, context.Message);
            return Task.CompletedTask;
        }

        public Task PostSend<T>(SendContext<T> context)
            where T : class => Task.CompletedTask;

        public Task SendFault<T>(SendContext<T> context, Exception exception)
            where T : class => Task.CompletedTask;
    }
}
