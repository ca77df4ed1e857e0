using Quartz;

namespace MeshBus.Persistence.TestHost;

/// <summary>
/// Keeps a fired trigger in the EXECUTING state for a while before its job runs, so a test can kill the replica that
/// holds it; recovered firings run without the wait.
/// </summary>
public sealed class HoldJobListener(TimeSpan hold) : IJobListener
{
    public string Name => "meshbus-test-hold";

    public async ValueTask JobToBeExecuted(IJobExecutionContext context, CancellationToken cancellationToken = default)
    {
        if (!context.Recovering)
        {
            await Task.Delay(hold, cancellationToken);
        }
    }

    public ValueTask JobExecutionVetoed(IJobExecutionContext context, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask JobWasExecuted(IJobExecutionContext context, JobExecutionException? jobException, CancellationToken cancellationToken = default) =>
        ValueTask.CompletedTask;

    public ValueTask JobProgressChanged(IJobExecutionContext context, Quartz.Extensibility.FireInstanceProgress progress, CancellationToken cancellationToken = default) =>
        ValueTask.CompletedTask;
}
