using MassTransit;
using MeshBus.Workers.Sync.Federation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Watchdog;

/// <summary>
/// At start, asks every watchdog (each pinned peer's and the federation's) to schedule its pending deadline again
/// (<see cref="WatchdogRearm"/>). Embedded, deadlines are scheduled on the in-memory transport and die with the process
/// while the watchdogs' state is kept in SQLite: without this, a peer that fell silent across a restart would never be
/// found stalled (fail open). A watchdog that does not exist yet, or is not waiting for a deadline, ignores it.
/// </summary>
public sealed class WatchdogRearmer(IBusControl bus, IServiceProvider services, IOptions<SyncOptions> options, ILogger<WatchdogRearmer> logger) : BackgroundService
{
    /// <summary>Publishes the re-arm requests now.</summary>
    public async Task RearmAsync(CancellationToken cancellationToken)
    {
        // Resolved here, not at start: a domain without keys yet must start and report not-ready, not crash.
        foreach (var peer in services.GetRequiredService<SyncPeers>().Peers)
        {
            await bus.Publish(new WatchdogRearm(PeerWatchdog.IdOf(peer)), cancellationToken);
        }

        if (options.Value.FederationName is { Length: > 0 } federation)
        {
            await bus.Publish(new WatchdogRearm(FederationWatchdog.IdOf(federation)), cancellationToken);
        }
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // Published before the watchdogs' endpoint is bound, a request would be lost (in memory nothing keeps it).
            await bus.WaitForHealthStatus(BusHealthStatus.Healthy, stoppingToken);
            await RearmAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Not fatal for the worker, but loud: until the next good statement moves it, a deadline may be missing.
            logger.LogError(e, "The watchdogs' deadlines could not be scheduled again at start");
        }
    }
}
