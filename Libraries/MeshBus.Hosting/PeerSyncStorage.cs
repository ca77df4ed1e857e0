using MeshBus.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace MeshBus.Hosting;

/// <summary>The per-peer sync state's one registration, used by Sync (which writes it) and Authorize (which reads it).</summary>
public static class PeerSyncStorage
{
    /// <summary>The SQLite file of the per-peer sync state when embedded (one file for every worker of the process).</summary>
    public const string SqliteFile = "sync.db";

    /// <summary>
    /// Registers <see cref="IPeerSyncStore"/> and <see cref="IReplicaLoadStore"/> (one store) on the process's storage:
    /// the shared PostgreSQL pool, or <see cref="SqliteFile"/>.
    /// </summary>
    public static IServiceCollection TryAddPeerSyncStore(this IServiceCollection services)
    {
        services.TryAddSingleton(sp =>
        {
            var storage = sp.GetRequiredService<MeshBusStorage>();
            return storage.Provider == StorageProvider.Postgres
                ? SqlPeerSyncStore.Postgres(storage.Postgres)
                : SqlPeerSyncStore.Sqlite(storage.SqlitePath(SqliteFile));
        });
        services.TryAddSingleton<IPeerSyncStore>(sp => sp.GetRequiredService<SqlPeerSyncStore>());
        services.TryAddSingleton<IReplicaLoadStore>(sp => sp.GetRequiredService<SqlPeerSyncStore>());
        return services;
    }
}
