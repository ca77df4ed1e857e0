using System.Net;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace MeshBus.Hosting.Tests;

/// <summary>/health/live and /health/ready of a host built with the defaults (in-memory bus, no server needed).</summary>
public sealed class HealthEndpointTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(string url)
    {
        using var response = await Http.GetAsync(url);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Polls until the status is the expected one (the bus connects in the background) or 20 s pass.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> EventuallyAsync(string url, HttpStatusCode expected)
    {
        var until = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var result = await GetAsync(url);
            if (result.Status == expected || DateTime.UtcNow > until)
            {
                return result;
            }

            await Task.Delay(100);
        }
    }

    private static async Task<(IHost Host, string BaseUrl)> StartAsync(params string[] extra)
    {
        var port = TestPaths.FreePort();
        string[] args =
        [
            "--MeshBus:Domain=acme.example/health-tests",
            "--MeshBus:DataDirectory=" + TestPaths.TempDirectory(),
            $"--Health:Urls=http://127.0.0.1:{port}",
            .. extra,
        ];
        var host = MeshBusHost.CreateBuilder(args, new EmptyWorker()).Build();
        await host.StartAsync();
        return (host, $"http://127.0.0.1:{port}");
    }

    [Fact]
    public async Task Live_and_ready_answer_200_when_the_bus_runs_and_storage_is_writable()
    {
        var (host, url) = await StartAsync();
        using (host)
        {
            var live = await GetAsync(url + "/health/live");
            Assert.Equal(HttpStatusCode.OK, live.Status);

            var ready = await EventuallyAsync(url + "/health/ready", HttpStatusCode.OK);
            Assert.True(ready.Status == HttpStatusCode.OK, ready.Body);
            Assert.Contains("storage: Healthy", ready.Body, StringComparison.Ordinal);
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Ready_answers_503_naming_storage_when_PostgreSQL_is_unreachable_while_live_stays_200()
    {
        var closed = TestPaths.FreePort();
        var (host, url) = await StartAsync(
            "--Storage:Provider=Postgres", $"--Storage:ConnectionString=Host=127.0.0.1;Port={closed};Username=postgres");
        using (host)
        {
            var ready = await GetAsync(url + "/health/ready");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.Status);
            Assert.Contains("storage: Unhealthy", ready.Body, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await GetAsync(url + "/health/live")).Status);
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Ready_answers_503_while_the_broker_cannot_be_reached()
    {
        var closed = TestPaths.FreePort();
        var (host, url) = await StartAsync(
            "--MeshBus:Transport=RabbitMq", "--RabbitMqTransport:Host=127.0.0.1", $"--RabbitMqTransport:Port={closed}",
            "--RabbitMqTransport:Username=guest", "--RabbitMqTransport:Password=guest");
        using (host)
        {
            var ready = await GetAsync(url + "/health/ready");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.Status);
            Assert.Contains("storage: Healthy", ready.Body, StringComparison.Ordinal);
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await host.StopAsync(stop.Token);
        }
    }
}
