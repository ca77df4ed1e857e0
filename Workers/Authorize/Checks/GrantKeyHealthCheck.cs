using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>
/// The keys half of Authorize's <c>/health/ready</c>: without the domain's grant key and key set every decision fails,
/// so the worker is not ready until they load (they are loaded again on each check, so keys written later count).
/// </summary>
internal sealed class GrantKeyHealthCheck(IServiceProvider services, IOptions<MeshBusOptions> mesh) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var keys = services.GetRequiredService<AuthorizeKeys>();
            return Task.FromResult(HealthCheckResult.Healthy($"grant key {keys.GrantSigner.KeyId}, key set {keys.KeySetSequence}"));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"cannot load the grant key and key set from {Path.GetFullPath(mesh.Value.ResolvedKeyDirectory)} (MeshBus__KeyDirectory): {e.Message}"));
        }
    }
}
