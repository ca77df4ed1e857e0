using MassTransit;
using MeshBus.Hosting;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MeshBus.Cli.Commands.Errors;

/// <summary>
/// The error and skipped queues MassTransit keeps beside every receive endpoint on RabbitMQ (<c>NAME_error</c>: a
/// message its consumer failed on after its retries, with <c>MT-Reason</c> and <c>MT-Fault-*</c> headers;
/// <c>NAME_skipped</c>: a message no consumer of the endpoint handles), reached with RabbitMQ.Client directly.
/// </summary>
internal sealed class ErrorQueues : IAsyncDisposable
{
    public const string ErrorSuffix = "_error";
    public const string SkippedSuffix = "_skipped";

    /// <summary>Bound of the connection attempt: an unreachable broker gives one line, not a hang.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The endpoints the workers name explicitly (their consumer definitions).</summary>
    private static readonly string[] NamedEndpoints =
    [
        "authorize-intents", "authorize-renewals", "authorize-endorsements", "authorize-quarantine", "enforce-reports",
        "intent-lifecycle", "lineage-recorder", "meshbus-scheduler", "sync-bridge-out",
    ];

    private readonly IConnection _connection;

    private ErrorQueues(IConnection connection) => _connection = connection;

    public static string Usage => """
          QUEUE               an endpoint (authorize-intents: both its _error and _skipped queues) or one such queue
          --rabbitmq URI      amqp://USER:PASS@HOST:PORT/VHOST (default: RabbitMqTransport__Host, __Port, __VirtualHost,
                              __Username, __Password, as the workers)
          --prefix P          the workers' RabbitMqTransport:EntityPrefix (default: RabbitMqTransport__EntityPrefix)
        """;

    public static async Task<ErrorQueues> ConnectAsync(MeshBus.Hosting.RabbitMqTransportOptions broker, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory
        {
            HostName = broker.Host,
            Port = broker.Port,
            VirtualHost = broker.VirtualHost,
            UserName = broker.Username,
            Password = broker.Password,
            AutomaticRecoveryEnabled = false,
            RequestedConnectionTimeout = ConnectTimeout,
            ClientProvidedName = "meshbus errors",
        };
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(ConnectTimeout);
        return new ErrorQueues(await factory.CreateConnectionAsync(bound.Token));
    }

    /// <summary>
    /// The error and skipped queues of every endpoint the four workers declare under <paramref name="prefix"/>, as
    /// candidates: a queue that does not exist is left out by <see cref="DepthAsync"/>.
    /// </summary>
    public static IReadOnlyList<string> KnownQueues(string prefix)
    {
        var names = new MeshBusEndpointNameFormatter(prefix);
        var consumerName = typeof(IEndpointNameFormatter).GetMethod(nameof(IEndpointNameFormatter.Consumer))!;
        var endpoints = NamedEndpoints.Select(n => prefix + n).ToList();
        foreach (var type in new[] { typeof(Workers.Sync.SyncWorker), typeof(Workers.Authorize.AuthorizeWorker), typeof(Workers.Enforce.EnforceWorker), typeof(Workers.Lineage.LineageWorker) }
            .SelectMany(t => t.Assembly.GetTypes())
            .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericTypeDefinition: false } && typeof(IConsumer).IsAssignableFrom(t)))
        {
            endpoints.Add((string)consumerName.MakeGenericMethod(type).Invoke(names, null)!);
        }

        return endpoints.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).SelectMany(e => new[] { e + ErrorSuffix, e + SkippedSuffix }).ToList();
    }

    /// <summary>The queues a QUEUE argument means: one error or skipped queue, or both of an endpoint.</summary>
    public static IEnumerable<string> Expand(string queue) =>
        IsErrorQueue(queue) ? [queue] : [queue + ErrorSuffix, queue + SkippedSuffix];

    public static bool IsErrorQueue(string queue) =>
        queue.EndsWith(ErrorSuffix, StringComparison.Ordinal) || queue.EndsWith(SkippedSuffix, StringComparison.Ordinal);

    /// <summary>The endpoint queue an error or skipped queue belongs to.</summary>
    public static string OriginalQueue(string queue) =>
        queue.EndsWith(ErrorSuffix, StringComparison.Ordinal) ? queue[..^ErrorSuffix.Length] : queue[..^SkippedSuffix.Length];

    /// <summary>How many messages wait in <paramref name="queue"/>; null when it does not exist.</summary>
    public async Task<uint?> DepthAsync(string queue, CancellationToken cancellationToken)
    {
        // A passive declare of a missing queue closes its channel (404): one channel per question.
        await using var channel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue, cancellationToken)).MessageCount;
        }
        catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            return null;
        }
    }

    /// <summary>The reason of the first waiting message (its <c>MT-Reason</c> and <c>MT-Fault-Message</c>), left in place.</summary>
    public async Task<string?> PeekReasonAsync(string queue, CancellationToken cancellationToken)
    {
        await using var channel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
        var message = await channel.BasicGetAsync(queue, autoAck: false, cancellationToken);
        if (message is null)
        {
            return null;
        }

        try
        {
            var reason = Header(message.BasicProperties, "MT-Reason");
            var fault = Header(message.BasicProperties, "MT-Fault-Message");
            return fault is null ? reason : $"{reason}: {fault}";
        }
        finally
        {
            await channel.BasicNackAsync(message.DeliveryTag, multiple: false, requeue: true, cancellationToken);
        }
    }

    /// <summary>
    /// Moves the messages waiting in <paramref name="queue"/> now (not those that fail again meanwhile) back to the
    /// endpoint's queue, properties and headers unchanged: each is published with the broker's confirmation before it
    /// is acknowledged here, so a crash in between duplicates a message (consumers are idempotent) but never loses one.
    /// </summary>
    public async Task<int> ReplayAsync(string queue, CancellationToken cancellationToken)
    {
        var target = OriginalQueue(queue);
        var depth = await DepthAsync(queue, cancellationToken) ?? 0;
        if (await DepthAsync(target, cancellationToken) is null)
        {
            throw new InvalidOperationException($"{queue}: its endpoint queue {target} does not exist; nothing was moved");
        }

        await using var channel = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        var moved = 0;
        for (var i = 0; i < depth; i++)
        {
            var message = await channel.BasicGetAsync(queue, autoAck: false, cancellationToken);
            if (message is null)
            {
                break;
            }

            await channel.BasicPublishAsync("", target, mandatory: true, new BasicProperties(message.BasicProperties), message.Body, cancellationToken);
            await channel.BasicAckAsync(message.DeliveryTag, multiple: false, cancellationToken);
            moved++;
        }

        return moved;
    }

    /// <summary>Empties <paramref name="queue"/>; returns how many messages it held.</summary>
    public async Task<uint> PurgeAsync(string queue, CancellationToken cancellationToken)
    {
        await using var channel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
        return await channel.QueuePurgeAsync(queue, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _connection.CloseAsync();
        await _connection.DisposeAsync();
    }

    private static string? Header(IReadOnlyBasicProperties properties, string name) =>
        properties.Headers is { } headers && headers.TryGetValue(name, out var value)
            ? value switch
            {
                byte[] bytes => System.Text.Encoding.UTF8.GetString(bytes),
                null => null,
                _ => value.ToString(),
            }
            : null;
}
