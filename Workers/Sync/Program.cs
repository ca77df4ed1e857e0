using MeshBus.Hosting;
using MeshBus.Workers.Sync;

return await MeshBusHost.RunAsync(args, new SyncWorker());
