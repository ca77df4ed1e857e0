using System.Net;
using System.Net.Sockets;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Hosting.Tests;

/// <summary>A worker with nothing of its own: the defaults alone.</summary>
internal sealed class EmptyWorker : IMeshBusWorker
{
    public string Name => "test";

    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
    }
}

internal static class TestPaths
{
    /// <summary>The repository root (the directory holding MeshBus.sln).</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MeshBus.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("MeshBus.sln not found above " + AppContext.BaseDirectory);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string TempDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "meshbus-hosting-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
