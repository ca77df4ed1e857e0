using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
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

    /// <summary>
    /// The sync watchdog's stall bound: trust in a peer lapses (and its executions are halted) when no good heartbeat or
    /// acknowledgement of it was signed within this. Longer than Authorize's heartbeat bound, so new intents involving
    /// the peer are refused <c>SyncStale</c> before running work is halted.
    /// </summary>
    public TimeSpan PeerStallAfter { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>
    /// The federation this domain is a member of (its bundles' <c>domain</c>), when it is one. With it, Sync adopts the
    /// federation policy (<see cref="FederationPolicyBundleFile"/>, or a newer one a member relays), announces its digest in
    /// every heartbeat, publishes it to Authorize and relays it to every peer, and watches that every peer announces the
    /// same (<see cref="FederationMismatchAfter"/>).
    /// </summary>
    public string? FederationName { get; set; }

    /// <summary>The federation's signed bundle (<c>meshbus-policy/v1</c>, scope federation, signed by every member's root).</summary>
    public string? FederationPolicyBundleFile { get; set; }

    /// <summary>
    /// How long peers may announce another federation policy than this domain's before trust in each of them lapses
    /// (<c>FederationMismatch</c>) and the work involving them is halted: long enough for a new epoch to reach every member.
    /// </summary>
    public TimeSpan FederationMismatchAfter { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Tolerated clock difference with peers: a statement dated further in the future is refused.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long after a peer acknowledged an epoch its heartbeats may still announce an older one (its Sync replicas
    /// apply a new policy file each within one heartbeat interval) before that counts as a contradiction.
    /// </summary>
    public TimeSpan ContradictionGrace { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// An Authorize replica counts as live (and must have loaded an epoch before it is acknowledged) when it reported
    /// within this; longer than <c>Authorize:ReplicaReportSeconds</c>, so a stopped replica stops blocking acknowledgements.
    /// </summary>
    public TimeSpan ReplicaLiveness { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Publishes <see cref="DomainHeartbeat"/> for this domain at start and then on every interval, stating what it has
/// applied (key set sequence, policy epochs, federation digest), signed with the domain's envelope key. Authorize checks
/// its age on every decision. The sequence is the signed issue time in milliseconds (kept strictly growing within this
/// replica), so the heartbeats of all Sync replicas of a domain are numbered on one clock and interchangeable: stopping
/// any replica leaves the others' heartbeats current.
/// </summary>
public sealed class DomainHeartbeatPublisher(
    IBus bus,
    IAppliedGovernance governance,
    GovernanceSigner signer,
    IOptions<MeshBusOptions> mesh,
    IOptions<SyncOptions> options,
    TimeProvider clock,
    ILogger<DomainHeartbeatPublisher> logger) : BackgroundService
{
    private long _sequence;

    /// <summary>
    /// Publishes one signed heartbeat now; nothing while a configured domain policy is not applied yet: a restarted
    /// replica would otherwise announce epoch 0 under a newer signed time than the epoch its peers saw it acknowledge,
    /// which they rightly take for a contradiction (trust lapses <c>GovernanceInconsistent</c>).
    /// </summary>
    public Task PublishAsync(CancellationToken cancellationToken)
    {
        if (!string.IsNullOrWhiteSpace(options.Value.PolicyBundleFile) && governance.Epoch(PolicyScope.Domain) == 0)
        {
            logger.LogDebug("No heartbeat yet: the domain policy in {File} is not applied", options.Value.PolicyBundleFile);
            return Task.CompletedTask;
        }

        var now = clock.GetUtcNow();
        var sequence = Next(now.ToUnixTimeMilliseconds());
        var heartbeat = signer.Sign(new DomainHeartbeat(
            mesh.Value.Domain,
            sequence,
            now,
            governance.KeySetSequence,
            governance.Epoch(PolicyScope.Domain),
            governance.Epoch(PolicyScope.Egress),
            governance.Digest(PolicyScope.Federation)));
        return bus.Publish(heartbeat, cancellationToken);
    }

    private long Next(long milliseconds)
    {
        long current, next;
        do
        {
            current = Interlocked.Read(ref _sequence);
            next = Math.Max(current + 1, milliseconds);
        }
        while (Interlocked.CompareExchange(ref _sequence, next, current) != current);
        return next;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
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
