using System.Diagnostics.Metrics;
using System.Net;
using Xunit;

namespace MeshBus.Hosting.Tests;

/// <summary><c>/metrics</c> beside the health endpoints: the MeshBus instruments in the Prometheus text format.</summary>
public sealed class MetricsEndpointTests
{
    [Fact(Timeout = 60_000)]
    public async Task The_metrics_endpoint_serves_decision_latency_executions_quarantines_and_the_peer_sync_age_hook()
    {
        var port = TestPaths.FreePort();
        using var host = MeshBusHost.CreateBuilder(
            ["--MeshBus:Domain=acme.example/metrics-tests", "--MeshBus:DataDirectory=" + TestPaths.TempDirectory(), $"--Health:Urls=http://127.0.0.1:{port}"],
            new EmptyWorker()).Build();
        await host.StartAsync();
        try
        {
            MeshBusMetrics.DecisionDuration.Record(0.004, new KeyValuePair<string, object?>("outcome", "Granted"));
            MeshBusMetrics.Quarantines.Add(1, new KeyValuePair<string, object?>("reason", "HaltNotAcknowledged"));
            _ = MeshBusMetrics.ObserveExecutions(() => [new Measurement<long>(7, new KeyValuePair<string, object?>("state", "Completed"))]);
            _ = MeshBusMetrics.ObservePeerSyncAge(() => [new Measurement<double>(2.5, new KeyValuePair<string, object?>("peer", "partner.example/prod"))]);

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/metrics"));
            var body = await response.Content.ReadAsStringAsync();

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("meshbus_authorize_decision_duration_seconds_bucket{", body, StringComparison.Ordinal);
            Assert.Contains("outcome=\"Granted\"", body, StringComparison.Ordinal);
            Assert.Contains("meshbus_enforce_quarantines_total{", body, StringComparison.Ordinal);
            Assert.Contains("meshbus_enforce_executions{", body, StringComparison.Ordinal);
            Assert.Contains("state=\"Completed\"", body, StringComparison.Ordinal);
            Assert.Contains("meshbus_sync_peer_age_seconds{", body, StringComparison.Ordinal);
            Assert.Contains("peer=\"partner.example/prod\"", body, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task The_metrics_endpoint_serves_the_runtimes_allocated_bytes_and_working_set_for_the_load_tool_and_operators()
    {
        var port = TestPaths.FreePort();
        using var host = MeshBusHost.CreateBuilder(
            ["--MeshBus:Domain=acme.example/metrics-tests", "--MeshBus:DataDirectory=" + TestPaths.TempDirectory(), $"--Health:Urls=http://127.0.0.1:{port}"],
            new EmptyWorker()).Build();
        await host.StartAsync();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var body = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));

            // bench/MeshBus.Load reads a worker's allocations from this line.
            Assert.Contains("dotnet_gc_heap_total_allocated_bytes_total", body, StringComparison.Ordinal);
            Assert.Contains("dotnet_process_memory_working_set_bytes", body, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
