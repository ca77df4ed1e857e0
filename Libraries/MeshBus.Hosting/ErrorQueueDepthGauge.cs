using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MeshBus.Hosting;

/// <summary>
/// <c>meshbus.error_queue.depth</c> on RabbitMQ: how many messages wait in the <c>_error</c> and <c>_skipped</c> queue
/// of each receive endpoint this process configures, read from the broker every <see cref="HealthOptions.ErrorQueueInterval"/>
/// with a passive queue declare (what <c>meshbus errors list</c> reads) on a connection of its own. A queue the broker
/// does not have (nothing ever failed there) reads 0. Replicas of one worker share their error queues and all report
/// them: take <c>max</c>. The in-memory transport has no such gauge (its error queues live and die with the process).
/// </summary>
internal sealed class ErrorQueueDepthGauge(IOptions<RabbitMqTransportOptions> broker, IOptions<HealthOptions> health, ILogger<ErrorQueueDepthGauge> logger) : BackgroundService
{
    /// <summary>The instrument's name (Prometheus: <c>meshbus_error_queue_depth</c>).</summary>
    public const string Name = "meshbus.error_queue.depth";

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<string, bool> _endpoints = new(StringComparer.Ordinal);
    private volatile IReadOnlyDictionary<string, long> _depths = new Dictionary<string, long>();
    private IConnection? _connection;
    private ObservableGauge<long>? _gauge;
    private bool _warned;

    /// <summary>Adds a receive endpoint (its queue name) whose error and skipped queues are reported.</summary>
    public void Track(string endpointQueue) => _endpoints.TryAdd(endpointQueue, true);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _gauge = MeshBusServiceCollectionExtensions.Meter.CreateObservableGauge(Name,
            () => _depths.Select(d => new Measurement<long>(d.Value, new KeyValuePair<string, object?>("queue", d.Key))),
            description: "Messages waiting in the error and skipped queues of this process's endpoints, by queue");
        using var timer = new PeriodicTimer(health.Value.ErrorQueueInterval);
        do
        {
            try
            {
                await ReadAsync(stoppingToken);
                _warned = false;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // The broker is away: keep the last reading, connect again on the next round. Readiness reports the bus.
                if (!_warned)
                {
                    logger.LogWarning("Error-queue depth not read from the broker: {Reason}", e.Message);
                    _warned = true;
                }

                await DropConnectionAsync();
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await DropConnectionAsync();
    }

    private async Task ReadAsync(CancellationToken cancellationToken)
    {
        if (_endpoints.IsEmpty)
        {
            return;
        }

        _connection ??= await ConnectAsync(cancellationToken);
        var depths = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var endpoint in _endpoints.Keys.Order(StringComparer.Ordinal))
        {
            foreach (var queue in new[] { endpoint + "_error", endpoint + "_skipped" })
            {
                // A passive declare of a missing queue closes its channel (404): one channel per question.
                await using var channel = await _connection.CreateChannelAsync(cancellationToken: cancellationToken);
                try
                {
                    depths[queue] = (await channel.QueueDeclarePassiveAsync(queue, cancellationToken)).MessageCount;
                }
                catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
                {
                    depths[queue] = 0;
                }
            }
        }

        _depths = depths;
    }

    private async Task<IConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var o = broker.Value;
        var factory = new ConnectionFactory
        {
            HostName = o.Host,
            Port = o.Port,
            VirtualHost = o.VirtualHost,
            UserName = o.Username,
            Password = o.Password,
            AutomaticRecoveryEnabled = false,
            RequestedConnectionTimeout = ConnectTimeout,
            ClientProvidedName = "meshbus error-queue depth",
        };
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(ConnectTimeout);
        return await factory.CreateConnectionAsync(bound.Token);
    }

    private async Task DropConnectionAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            try
            {
                await connection.DisposeAsync();
            }
            catch (Exception e) when (e is RabbitMQClientException or IOException or ObjectDisposedException)
            {
                logger.LogDebug(e, "Error-queue depth connection not closed cleanly");
            }
        }
    }
}
