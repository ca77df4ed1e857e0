using System.Diagnostics;
using MassTransit.Logging;
using Xunit;

namespace MeshBus.Hosting.Tests;

/// <summary>Traces are recorded only to be exported: without a collector, no span is created per message.</summary>
public sealed class TracingTests
{
    [Fact(Timeout = 60_000)]
    public async Task Without_a_collector_configured_no_MassTransit_or_MeshBus_span_is_recorded()
    {
        Assert.True(string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(MeshBusServiceCollectionExtensions.OtlpEndpointVariable)),
            "this test needs OTEL_EXPORTER_OTLP_ENDPOINT unset");
        using var host = MeshBusHost.CreateBuilder(
            ["--MeshBus:Domain=acme.example/tracing-tests", "--MeshBus:DataDirectory=" + TestPaths.TempDirectory()],
            new EmptyWorker()).Build();
        await host.StartAsync();
        try
        {
            // A listener (the tracer provider) is what makes MassTransit build an activity for every send, receive and
            // consume; the load tool measured that as part of the hosted path's cost (docs/performance.md).
            using var massTransit = new ActivitySource(DiagnosticHeaders.DefaultListenerName);
            Assert.False(massTransit.HasListeners());
            Assert.False(MeshBusServiceCollectionExtensions.ActivitySource.HasListeners());
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
