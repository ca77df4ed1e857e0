using MeshBus.Persistence;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MeshBus.Hosting;

/// <summary>
/// The storage half of <c>/health/ready</c>: PostgreSQL answers a query, or the embedded data directory is writable.
/// </summary>
internal sealed class StorageHealthCheck(IOptions<StorageOptions> storage, IOptions<MeshBusOptions> meshBus) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var options = storage.Value;
        try
        {
            if (options.Provider == StorageProvider.Postgres)
            {
                // Unpooled: a probe every few seconds must not keep a pool of its own open beside the budgeted ones.
                var builder = new NpgsqlConnectionStringBuilder(options.ConnectionString) { Timeout = 3, Pooling = false };
                await using var connection = new NpgsqlConnection(builder.ConnectionString);
                await connection.OpenAsync(cancellationToken);
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync(cancellationToken);
                return HealthCheckResult.Healthy($"PostgreSQL {builder.Host}:{builder.Port}");
            }

            var directory = Path.GetFullPath(meshBus.Value.DataDirectory);
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, $".ready-{Environment.ProcessId}");
            await File.WriteAllTextAsync(probe, "", cancellationToken);
            File.Delete(probe);
            return HealthCheckResult.Healthy($"SQLite in {directory}");
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"{options.Provider} storage unreachable: {e.Message}");
        }
    }
}
