using MeshBus.Persistence;

namespace MeshBus.Hosting;

/// <summary>Maps the <c>Storage</c> section onto the stores of the libraries (one database per domain in a fleet, files when embedded).</summary>
public static class MeshBusStorage
{
    /// <summary>
    /// The SQL store for sagas and schedules: the PostgreSQL connection string in a fleet, or the SQLite file
    /// <paramref name="sqliteFileName"/> under the data directory when embedded.
    /// </summary>
    public static SqlStoreOptions SqlStore(MeshBusOptions meshBus, StorageOptions storage, string sqliteFileName)
    {
        if (storage.Provider == StorageProvider.Postgres)
        {
            return new SqlStoreOptions { Provider = SqlProvider.Postgres, ConnectionString = storage.ConnectionString! };
        }

        Directory.CreateDirectory(meshBus.DataDirectory);
        var path = Path.GetFullPath(Path.Combine(meshBus.DataDirectory, sqliteFileName));
        return new SqlStoreOptions { Provider = SqlProvider.Sqlite, ConnectionString = $"Data Source={path};Pooling=True" };
    }
}
