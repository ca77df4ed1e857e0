using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>Forgets spent nonces once no intent carrying them could be accepted any more (every replica may run it).</summary>
public sealed partial class NoncePruner(INonceStore nonces, TimeProvider time, ILogger<NoncePruner> logger) : BackgroundService
{
    /// <summary>How often expired nonces are deleted.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var removed = await nonces.PruneAsync(time.GetUtcNow(), stoppingToken);
                    LogPruned(removed);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The table only grows until the next attempt; decisions are unaffected.
                    LogFailed(e);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Pruned {Count} expired intent nonces")]
    private partial void LogPruned(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pruning expired intent nonces failed")]
    private partial void LogFailed(Exception exception);
}
