using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace MeshBus.Hosting;

/// <summary>
/// Serves <c>/health/live</c> (the process runs) and <c>/health/ready</c> (every check tagged <c>ready</c> passes: the
/// bus is connected, storage answers) and <c>/metrics</c> (the process's metrics in the Prometheus text format, see
/// <see cref="MeshBusMetrics"/>) on <see cref="HealthOptions.Urls"/>, on a small Kestrel of its own so the worker host
/// stays a generic host.
/// </summary>
internal sealed class HealthEndpointService(IOptions<HealthOptions> options, HealthCheckService checks, IServiceProvider services, ILogger<HealthEndpointService> logger) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var urls = options.Value.Urls;
        if (string.IsNullOrWhiteSpace(urls))
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(checks);
        _app = builder.Build();
        _app.MapGet("/health/live", () => Results.Text("live"));
        _app.MapGet("/health/ready", async (HttpContext http) =>
        {
            var report = await checks.CheckHealthAsync(r => r.Tags.Contains("ready"), http.RequestAborted);
            var body = string.Join('\n', report.Entries.Select(e => $"{e.Key}: {e.Value.Status}{(e.Value.Description is { } d ? " - " + d : "")}"));
            return Results.Text(
                report.Status == HealthStatus.Healthy ? "ready\n" + body : "not ready\n" + body,
                statusCode: report.Status == HealthStatus.Healthy ? 200 : 503);
        });
        // The worker's meter provider (with its Prometheus exporter) lives in the worker's container, not this one.
        if (services.GetService<MeterProvider>() is { } meters)
        {
            _app.MapPrometheusScrapingEndpoint("/metrics", meters, null, null);
        }

        await _app.StartAsync(cancellationToken);
        logger.LogInformation("Health endpoints on {Urls}: /health/live, /health/ready, /metrics", urls);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }
}
