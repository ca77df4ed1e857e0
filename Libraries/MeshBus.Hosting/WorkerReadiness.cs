using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshBus.Hosting;

/// <summary>
/// What a worker needs beyond its bus and storage to do its job (its keys, an applied policy). A worker records each
/// need that is not met with the reason; <c>/health/ready</c> answers 503 naming it until it is met again, so a worker
/// that cannot do its job is never routed to as if it could.
/// </summary>
public sealed class WorkerReadiness
{
    private readonly Dictionary<string, string> _problems = new(StringComparer.Ordinal);

    /// <summary>Records that <paramref name="need"/> is not met, and why (replaces an earlier reason).</summary>
    public void NotMet(string need, string reason)
    {
        lock (_problems)
        {
            _problems[need] = reason;
        }
    }

    /// <summary>Records that <paramref name="need"/> is met.</summary>
    public void Met(string need)
    {
        lock (_problems)
        {
            _problems.Remove(need);
        }
    }

    /// <summary>The needs not met, with their reasons.</summary>
    public IReadOnlyDictionary<string, string> Problems
    {
        get
        {
            lock (_problems)
            {
                return new Dictionary<string, string>(_problems, StringComparer.Ordinal);
            }
        }
    }
}

/// <summary>The <see cref="WorkerReadiness"/> half of <c>/health/ready</c>.</summary>
internal sealed class WorkerReadinessHealthCheck(WorkerReadiness readiness) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var problems = readiness.Problems;
        return Task.FromResult(problems.Count == 0
            ? HealthCheckResult.Healthy("keys and policy in place")
            : HealthCheckResult.Unhealthy(string.Join("; ", problems.Select(p => $"{p.Key}: {p.Value}"))));
    }
}

/// <summary>Says at start, in the log, why the worker is not ready (the same checks as <c>/health/ready</c>).</summary>
internal sealed class ReadinessStartReport(IServiceProvider services, HealthCheckService checks, ILogger<ReadinessStartReport> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Hosts built without the generic host (test harnesses, embedded) have no lifetime: nothing to report then.
        if (services.GetService(typeof(IHostApplicationLifetime)) is IHostApplicationLifetime lifetime)
        {
            lifetime.ApplicationStarted.Register(() => _ = ReportAsync(lifetime.ApplicationStopping));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task ReportAsync(CancellationToken cancellationToken)
    {
        try
        {
            var report = await checks.CheckHealthAsync(r => r.Tags.Contains("ready") && !r.Tags.Contains("masstransit"), cancellationToken);
            foreach (var (name, entry) in report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy))
            {
                logger.LogError("Not ready: {Check}: {Reason}", name, entry.Description);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
