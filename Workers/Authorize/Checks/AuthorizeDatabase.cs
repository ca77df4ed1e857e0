using MeshBus.Hosting;
using Npgsql;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>
/// Where the worker's own tables (quarantine, nonces) live: one bounded PostgreSQL pool for a fleet, or the
/// <c>authorize.db</c> SQLite file in the data directory.
/// </summary>
public sealed class AuthorizeDatabase : IAsyncDisposable
{
    /// <summary>Chooses the store from the storage options.</summary>
    /// <param name="storage">The storage options.</param>
    /// <param name="options">The worker's options (pool size).</param>
    /// <param name="dataDirectory">The data directory (SQLite).</param>
    public AuthorizeDatabase(StorageOptions storage, AuthorizeOptions options, string dataDirectory)
    {
        SqlitePath = Path.Combine(dataDirectory, "authorize.db");
        if (storage.Provider == StorageProvider.Postgres)
        {
            Postgres = NpgsqlDataSource.Create(Bounded(storage.ConnectionString!, options.DatabasePoolSize));
        }
    }

    /// <summary>The shared pool when the storage is PostgreSQL, else null.</summary>
    public NpgsqlDataSource? Postgres { get; }

    /// <summary>The SQLite file when the storage is SQLite.</summary>
    public string SqlitePath { get; }

    /// <summary>The connection string with <c>Maximum Pool Size</c> = <paramref name="poolSize"/>, unless it names one itself.</summary>
    public static string Bounded(string connectionString, int poolSize)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var named = connectionString.Contains("Maximum Pool Size", StringComparison.OrdinalIgnoreCase)
            || connectionString.Contains("MaxPoolSize", StringComparison.OrdinalIgnoreCase)
            || connectionString.Contains("Max Pool Size", StringComparison.OrdinalIgnoreCase);
        if (!named)
        {
            builder.MaxPoolSize = poolSize;
        }

        return builder.ConnectionString;
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Postgres?.DisposeAsync() ?? ValueTask.CompletedTask;
}
