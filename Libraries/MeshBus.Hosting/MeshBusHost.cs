using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MeshBus.Hosting;

/// <summary>Builds and runs a worker process: <c>return await MeshBusHost.RunAsync(args, new AuthorizeWorker());</c>.</summary>
public static class MeshBusHost
{
    /// <summary>Creates the host builder with MeshBus defaults (configuration from appsettings, environment, command line).</summary>
    public static HostApplicationBuilder CreateBuilder(string[] args, params IMeshBusWorker[] workers)
    {
        var builder = Host.CreateApplicationBuilder(args);
        // Secrets mounted as files (NAME_FILE); the command line still wins over them.
        builder.Configuration.AddInMemoryCollection(FileSecrets.Read(FileSecrets.ProcessEnvironment()));
        builder.Configuration.AddCommandLine(args);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        MeshBusLogging.Configure(builder.Logging, builder.Configuration);
        builder.Services.AddHostedService<StartLine>();
        builder.Services.AddMeshBus(builder.Configuration, workers);
        return builder;
    }

    /// <summary>
    /// Runs the workers until SIGTERM/Ctrl-C (graceful shutdown: in-flight messages finish). Returns 0, or 2 with the
    /// list of missing or invalid settings when configuration is wrong.
    /// </summary>
    public static async Task<int> RunAsync(string[] args, params IMeshBusWorker[] workers)
    {
        IHost host;
        try
        {
            host = CreateBuilder(args, workers).Build();
            ValidateOptions(host.Services);
        }
        catch (Exception e) when (SettingErrors.Describe(e) is { Count: > 0 } failures)
        {
            await Console.Error.WriteLineAsync("meshbus: configuration error:");
            foreach (var failure in failures)
            {
                await Console.Error.WriteLineAsync("  - " + failure);
            }

            return 2;
        }

        try
        {
            await host.StartAsync();
        }
        catch (OperationCanceledException) when (host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested)
        {
            // SIGTERM arrived while starting: not a crash, stop what did start below.
        }
        catch (Exception e) when (SettingErrors.Describe(e) is { Count: > 0 } failures)
        {
            // A setting read only when a service starts: the same answer as the checks above.
            await Console.Error.WriteLineAsync("meshbus: configuration error:");
            foreach (var failure in failures)
            {
                await Console.Error.WriteLineAsync("  - " + failure);
            }

            host.Dispose();
            return 2;
        }

        await host.WaitForShutdownAsync();
        host.Dispose();
        return 0;
    }

    /// <summary>Resolves every validated options section so a wrong setting fails before anything starts.</summary>
    public static void ValidateOptions(IServiceProvider services)
    {
        var failures = new List<string>();
        foreach (var resolve in new Func<object>[]
        {
            () => services.GetRequiredService<IOptions<MeshBusOptions>>().Value,
            () => services.GetRequiredService<IOptions<RabbitMqTransportOptions>>().Value,
            () => services.GetRequiredService<IOptions<StorageOptions>>().Value,
            () => services.GetRequiredService<IOptions<HealthOptions>>().Value,
        })
        {
            try
            {
                resolve();
            }
            catch (Exception e) when (SettingErrors.Describe(e) is { Count: > 0 } these)
            {
                failures.AddRange(these);
            }
        }

        try
        {
            // Every other section registered with ValidateOnStart (the workers' own options).
            services.GetService<IStartupValidator>()?.Validate();
        }
        catch (Exception e) when (SettingErrors.Describe(e) is { Count: > 0 } more)
        {
            failures.AddRange(more);
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(MeshBusOptions), failures.Distinct());
        }
    }

    /// <summary>Reads a configuration value the way the host does, for tools that start hosts themselves.</summary>
    public static IConfigurationRoot BuildConfiguration(string[] args, IDictionary<string, string?>? overrides = null) =>
        new ConfigurationBuilder()
            .AddEnvironmentVariables()
            .AddInMemoryCollection(FileSecrets.Read(FileSecrets.ProcessEnvironment()))
            .AddCommandLine(args)
            .AddInMemoryCollection(overrides ?? new Dictionary<string, string?>())
            .Build();
}
