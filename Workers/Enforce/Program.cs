using MeshBus.Hosting;
using MeshBus.Workers.Enforce;

return await MeshBusHost.RunAsync(args, new EnforceWorker());
