using System.Diagnostics.Metrics;
using MeshBus.Hosting;
using MeshBus.Persistence;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>
/// <c>meshbus.enforce.executions</c>: the intent lifecycles by state, read from the saga store every
/// <see cref="Interval"/> (a scrape reads the last reading; it never waits on the database).
/// </summary>
internal sealed class ExecutionStateGauge(ISagaStateReader sagas, ILogger<ExecutionStateGauge> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);

    private volatile IReadOnlyDictionary<string, long> _counts = new Dictionary<string, long>();
    private ObservableGauge<long>? _gauge;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _gauge = MeshBusMetrics.ObserveExecutions(() => _counts.Select(c => new Measurement<long>(c.Value, new KeyValuePair<string, object?>("state", c.Key))));
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                _counts = await sagas.CountByStateAsync<IntentLifecycleState>("currentState", stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store is down: keep the last reading; readiness reports the store.
                logger.LogDebug(e, "Execution states not read");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
