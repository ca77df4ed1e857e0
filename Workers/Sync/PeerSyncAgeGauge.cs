using System.Diagnostics.Metrics;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Workers.Sync.Watchdog;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshBus.Workers.Sync;

/// <summary>
/// <c>meshbus.sync.peer.age</c> (<see cref="MeshBusMetrics.ObservePeerSyncAge"/>): for each pinned peer, the age of its
/// latest verified heartbeat in the per-peer sync state. The rows are read every <see cref="Interval"/>; the age is
/// computed when scraped, so it keeps growing while a peer is silent and a scrape never waits on the database. A peer
/// never heard from has no row and no series (alert on its absence).
/// </summary>
internal sealed class PeerSyncAgeGauge(IPeerSyncStore store, IServiceProvider services, TimeProvider clock, ILogger<PeerSyncAgeGauge> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private volatile IReadOnlyDictionary<string, DateTimeOffset> _sentAt = new Dictionary<string, DateTimeOffset>();
    private ObservableGauge<double>? _gauge;

    /// <summary>The measurements a scrape reads now.</summary>
    internal IEnumerable<Measurement<double>> Observe()
    {
        var now = clock.GetUtcNow();
        return _sentAt.Select(p => new Measurement<double>(Math.Max(0, (now - p.Value).TotalSeconds), new KeyValuePair<string, object?>("peer", p.Key)));
    }

    /// <summary>Reads every peer's row once.</summary>
    internal async Task ReadAsync(SyncPeers peers, CancellationToken cancellationToken)
    {
        var sentAt = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var peer in peers.Peers)
        {
            if (await store.GetAsync(peer, cancellationToken) is { } row)
            {
                sentAt[peer] = row.HeartbeatSentAt;
            }
        }

        _sentAt = sentAt;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, clock);
        do
        {
            try
            {
                // Resolved here, not at start: a domain without keys yet must start and report not-ready, not crash.
                var peers = services.GetRequiredService<SyncPeers>();
                if (peers.Peers.Count == 0)
                {
                    return; // no peers pinned: nothing to report
                }

                _gauge ??= MeshBusMetrics.ObservePeerSyncAge(Observe);
                await ReadAsync(peers, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store is down or the keys are missing: keep the last reading (the ages keep growing); readiness
                // reports the store and the keys.
                logger.LogDebug(e, "Per-peer sync state not read");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
