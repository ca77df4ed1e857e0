using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync;

/// <summary>The <c>Sync</c> section.</summary>
public sealed class SyncOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "Sync";

    /// <summary>How often the domain announces itself (Authorize's freshness bound must be longer).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The domain's signed policy bundle (<c>meshbus-policy/v1</c>), applied and distributed at start.</summary>
    public string? PolicyBundleFile { get; set; }
}

/// <summary>
/// Publishes <see cref="DomainHeartbeat"/> for this domain at start and then on every interval, stating what it has
/// applied (key set sequence, policy epochs, federation digest). Authorize checks its age on every decision.
/// </summary>
public sealed class DomainHeartbeatPublisher(
    IBus bus,
    IAppliedGovernance governance,
    IOptions<MeshBusOptions> mesh,
    IOptions<SyncOptions> options,
    TimeProvider clock,
    ILogger<DomainHeartbeatPublisher> logger) : BackgroundService
{
    private long _sequence;

    /// <summary>Publishes one heartbeat now.</summary>
    public Task PublishAsync(CancellationToken cancellationToken)
    {
        var heartbeat = new DomainHeartbeat(
            mesh.Value.Domain,
            Interlocked.Increment(ref _sequence),
            clock.GetUtcNow(),
            governance.KeySetSequence,
            governance.Epoch(PolicyScope.Domain),
            governance.Epoch(PolicyScope.Egress),
            governance.Digest(PolicyScope.Federation));
        return bus.Publish(heartbeat, cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Sequences start from the wall clock so a restarted Sync is never behind its previous life.
        _sequence = clock.GetUtcNow().ToUnixTimeMilliseconds();
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, clock);
        do
        {
            try
            {
                await PublishAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The next tick tries again; a missing heartbeat shows up as staleness, which fails closed.
                logger.LogWarning(e, "Domain heartbeat not published");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
