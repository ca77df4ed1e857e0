using MeshBus.Hosting;
using MeshBus.Workers.Lineage;

return await MeshBusHost.RunAsync(args, new LineageWorker());
