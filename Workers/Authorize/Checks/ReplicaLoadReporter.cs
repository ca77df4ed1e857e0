using MeshBus.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>
/// Reports what this replica has loaded (its domain-policy epoch) to the domain's database under an id of its own: on
/// start, right after it loads a published policy (<see cref="Consumers.GovernanceStateConsumer"/>), and every
/// <see cref="AuthorizeOptions.ReplicaReportSeconds"/> (which is also how Sync tells a live replica from a stopped one).
/// Sync sends the domain's <c>PolicySynced</c> only when every live replica has loaded the epoch.
/// </summary>
/// <remarks>
/// What the replica loaded is resolved on each report, not at start: a replica without keys still starts (and says it
/// is not ready, <see cref="GrantKeyHealthCheck"/>); it reports nothing, so no acknowledgement counts on it.
/// </remarks>
public sealed class ReplicaLoadReporter(IReplicaLoadStore store, IServiceProvider services, IOptions<AuthorizeOptions> options, TimeProvider clock,
    ILogger<ReplicaLoadReporter> logger) : BackgroundService
{
    private string? _lastProblem;

    /// <summary>This replica's id: one per process start.</summary>
    public string ReplicaId { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";

    /// <summary>Reports now.</summary>
    public Task ReportAsync(CancellationToken cancellationToken)
    {
        var loaded = services.GetRequiredService<ILoadedGovernance>();
        return store.ReportAsync(ReplicaId, clock.GetUtcNow(), loaded.DomainPolicyEpoch, loaded.FederationPolicyDigest, cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.ReplicaReportSeconds), clock);
        do
        {
            try
            {
                await ReportAsync(stoppingToken);
                _lastProblem = null;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Not reported: Sync withholds the acknowledgement (fails closed) until a report gets through. Logged
                // once per distinct problem, not every interval.
                if (e.Message != _lastProblem)
                {
                    _lastProblem = e.Message;
                    logger.LogWarning("Reporting the loaded policy epoch failed; retrying every interval: {Reason}", e.Message);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
