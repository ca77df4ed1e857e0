using MeshBus.Hosting;
using MeshBus.Workers.Authorize;

return await MeshBusHost.RunAsync(args, new AuthorizeWorker());
