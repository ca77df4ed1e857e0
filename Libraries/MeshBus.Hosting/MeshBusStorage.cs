using MeshBus.Ledger;
using MeshBus.Persistence;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MeshBus.Hosting;

/// <summary>
/// The one storage setup of a process, from the <c>Storage</c> section: which engine, which files or which database,
/// and how many connections. Every worker takes its stores from here (eShop's one place per service where its
/// dependencies are wired); none reads <c>Storage:*</c> itself. SQLite files live under <c>MeshBus:DataDirectory</c>;
/// every PostgreSQL pool (lineage log, the worker's own tables, sagas and schedules) is bounded by <c>Storage:PoolSize</c>. Nothing here touches a database: pools open connections
/// on first use, so no dependency-injection factory blocks on I/O.
/// </summary>
public sealed class MeshBusStorage : IAsyncDisposable
{
    private readonly Lazy<NpgsqlDataSource> _pool;

    /// <summary>Creates the setup from the bound options.</summary>
    /// <param name="storage">The <c>Storage</c> section.</param>
    /// <param name="meshBus">The <c>MeshBus</c> section (data directory).</param>
    public MeshBusStorage(IOptions<StorageOptions> storage, IOptions<MeshBusOptions> meshBus)
    {
        Options = storage.Value;
        DataDirectory = meshBus.Value.DataDirectory;
        _pool = new Lazy<NpgsqlDataSource>(() => NpgsqlDataSource.Create(BoundedConnectionString));
    }

    /// <summary>The storage options.</summary>
    public StorageOptions Options { get; }

    /// <summary>The engine.</summary>
    public StorageProvider Provider => Options.Provider;

    /// <summary>The directory of the SQLite files.</summary>
    public string DataDirectory { get; }

    /// <summary>
    /// The PostgreSQL connection string with <c>Maximum Pool Size</c> = <see cref="StorageOptions.PoolSize"/>, unless it
    /// names one itself. Throws when the provider is not PostgreSQL.
    /// </summary>
    public string BoundedConnectionString => Bounded(PostgresConnectionString, Options.PoolSize);

    /// <summary>The process's shared PostgreSQL pool for the workers' own tables (created on first use).</summary>
    public NpgsqlDataSource Postgres => _pool.Value;

    private string PostgresConnectionString => Provider == StorageProvider.Postgres && !string.IsNullOrWhiteSpace(Options.ConnectionString)
        ? Options.ConnectionString
        : throw new InvalidOperationException("Storage:Provider is not Postgres (with Storage:ConnectionString); there is no PostgreSQL pool");

    /// <summary>The full path of SQLite file <paramref name="fileName"/> under the data directory (created when missing).</summary>
    public string SqlitePath(string fileName) => SqlitePath(DataDirectory, fileName);

    /// <summary>The store of sagas or schedules: the database in a fleet, SQLite file <paramref name="sqliteFileName"/> when embedded.</summary>
    public SqlStoreOptions SqlStore(string sqliteFileName) => SqlStore(Options, DataDirectory, sqliteFileName);

    /// <summary>
    /// The same, read from configuration, for registrations that need it before the container exists (the saga
    /// repository and the Quartz job store are configured while services are being added).
    /// </summary>
    public static SqlStoreOptions SqlStore(IConfiguration configuration, string sqliteFileName)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var storage = configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
        var meshBus = configuration.GetSection(MeshBusOptions.Section).Get<MeshBusOptions>() ?? new MeshBusOptions();
        return SqlStore(storage, meshBus.DataDirectory, sqliteFileName);
    }

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

    /// <summary>
    /// The domain's lineage log (Authorize appends decisions to it, Lineage the other governance events; one per
    /// process however many workers it hosts): <c>lineage.db</c>, or the database behind a pool of its own.
    /// </summary>
    public ILineageLog OpenLineageLog(TimeProvider time)
    {
        var options = new LineageLogOptions { TimeProvider = time };
        return Provider == StorageProvider.Postgres
            ? LineageLogs.OpenPostgres(BoundedConnectionString, options)
            : LineageLogs.OpenSqlite(SqlitePath("lineage.db"), options);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _pool.IsValueCreated ? _pool.Value.DisposeAsync() : ValueTask.CompletedTask;

    // Sagas and Quartz open connections by connection string (Npgsql's pool per string): the same bounded string gives
    // them one pool of Storage:PoolSize between them, instead of Npgsql's default of 100 each process.
    private static SqlStoreOptions SqlStore(StorageOptions storage, string dataDirectory, string sqliteFileName) =>
        storage.Provider == StorageProvider.Postgres
            ? new SqlStoreOptions
            {
                Provider = StorageProvider.Postgres,
                ConnectionString = BoundedIfValid(storage.ConnectionString, storage.PoolSize),
            }
            : new SqlStoreOptions { Provider = StorageProvider.Sqlite, ConnectionString = $"Data Source={SqlitePath(dataDirectory, sqliteFileName)};Pooling=True" };

    // Called while services are registered, before the settings are validated: a wrong pool size or connection string
    // is left as it is here, so that validation names it (exit 2) instead of this throwing first.
    private static string BoundedIfValid(string? connectionString, int poolSize)
    {
        if (string.IsNullOrWhiteSpace(connectionString) || poolSize < 1)
        {
            return connectionString ?? "";
        }

        try
        {
            return Bounded(connectionString, poolSize);
        }
        catch (ArgumentException)
        {
            return connectionString;
        }
    }

    private static string SqlitePath(string dataDirectory, string fileName)
    {
        Directory.CreateDirectory(dataDirectory);
        return Path.GetFullPath(Path.Combine(dataDirectory, fileName));
    }
}

/// <summary>Registers <see cref="MeshBusStorage"/> and the stores every worker shares.</summary>
public static class MeshBusStorageServiceCollectionExtensions
{
    /// <summary>
    /// Registers the storage setup and the domain's lineage log (once per process; a test or a host may register its
    /// own <see cref="ILineageLog"/> first). Called by <c>AddMeshBus</c>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    public static IServiceCollection AddMeshBusStorage(this IServiceCollection services)
    {
        services.TryAddSingleton<MeshBusStorage>();
        services.TryAddSingleton(sp => sp.GetRequiredService<MeshBusStorage>().OpenLineageLog(sp.GetRequiredService<TimeProvider>()));
        return services;
    }
}
