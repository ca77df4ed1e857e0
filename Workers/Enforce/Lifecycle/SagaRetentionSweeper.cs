using MeshBus.Persistence;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>
/// Deletes finished intent lifecycles older than <see cref="EnforceOptions.Retention"/> from the saga store every
/// <see cref="EnforceOptions.RetentionSweepInterval"/>, so the table holds live work and recent history only. Every
/// replica sweeps; the deletes are idempotent. Lineage keeps the record of every lifecycle regardless.
/// </summary>
public sealed class SagaRetentionSweeper(ISagaRetention sagas, IOptions<EnforceOptions> options, TimeProvider time, ILogger<SagaRetentionSweeper> logger) : BackgroundService
{
    /// <summary>The states no event moves an intent lifecycle out of.</summary>
    public static readonly IReadOnlyList<string> FinalStates = ["Completed", "Halted", "Expired", "Denied"];

    /// <summary>One sweep: deletes what is past retention now. Returns how many lifecycles were deleted.</summary>
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        var before = time.GetUtcNow() - options.Value.Retention;
        var deleted = await sagas.DeleteFinishedAsync<IntentLifecycleState>("currentState", [.. FinalStates], before, cancellationToken);
        if (deleted > 0)
        {
            logger.LogInformation("Deleted {Count} finished intent lifecycles last changed before {Before:O} (Enforce:Retention {Retention})", deleted, before, options.Value.Retention);
        }

        return deleted;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RetentionSweepInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await SweepAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The store is down: the next sweep tries again; readiness reports the store.
                logger.LogWarning(e, "Retention sweep of the saga store failed");
            }
        }
    }
}
