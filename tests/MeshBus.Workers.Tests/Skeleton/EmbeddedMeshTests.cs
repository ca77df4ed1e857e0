using MeshBus.Embedded;
using MeshBus.Ledger;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>The embedded all-workers host of <c>meshbus demo</c>, started from the library as tests and tools start it.</summary>
public sealed class EmbeddedMeshTests : IDisposable
{
    private const string Domain = "acme.example/prod";
    private readonly string _data = Directory.CreateTempSubdirectory("meshbus-embedded-").FullName;

    [Fact(Timeout = 120_000)]
    public async Task The_four_workers_start_ready_and_share_one_lineage_log()
    {
        var now = DateTimeOffset.UtcNow;
        var keyDir = DomainAdministration.Initialize(Path.Combine(_data, "keys"), Domain, now).DirectoryPath;
        var policy = Path.Combine(_data, "policy.json");
        await File.WriteAllTextAsync(policy, PolicyBundleSigning.Sign($$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{Domain}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["**"]}}]}
            """, DomainKeys.Load(keyDir, KeyUsage.Grant).Signer(KeyUsage.Grant, now)));

        await using var mesh = await EmbeddedMesh.StartAsync(new EmbeddedMeshOptions(Domain, _data, keyDir, policy));

        Assert.Equal(["sync", "authorize", "enforce", "lineage"], EmbeddedMesh.WorkerNames);
        Assert.Same(mesh.Lineage, mesh.Services.GetRequiredService<ILineageLog>());

        // Ready means every worker's own check passes: keys loaded, the policy applied, the bus connected, storage answers.
        var health = mesh.Services.GetRequiredService<HealthCheckService>();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        HealthReport report;
        while ((report = await health.CheckHealthAsync(r => r.Tags.Contains("ready"), bound.Token)).Status != HealthStatus.Healthy)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), bound.Token);
        }

        Assert.Equal(HealthStatus.Healthy, report.Status);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may still hold a file a moment after the host stopped; the temporary directory is left behind.
        }
    }
}
