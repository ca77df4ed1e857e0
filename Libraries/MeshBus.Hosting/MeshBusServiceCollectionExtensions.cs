using System.Diagnostics;
using System.Diagnostics.Metrics;
using MassTransit;
using MassTransit.Logging;
using MassTransit.Monitoring;
using MeshBus.Persistence;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace MeshBus.Hosting;

/// <summary>The one registration every MeshBus process uses (STYLE.md: eShop's service defaults).</summary>
public static class MeshBusServiceCollectionExtensions
{
    /// <summary>MeshBus's own activity source (spans around decisions and appends).</summary>
    public static readonly ActivitySource ActivitySource = new("MeshBus");

    /// <summary>The .NET runtime's built-in meter (<c>dotnet.gc.heap.total_allocated</c>, <c>dotnet.process.memory.working_set</c>, ...).</summary>
    public const string RuntimeMeterName = "System.Runtime";

    /// <summary>The environment variable naming an OpenTelemetry collector; traces are recorded and exported only when set.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>MeshBus's own meter (decisions, denials, halts, appends, dropped envelopes).</summary>
    public static readonly Meter Meter = new("MeshBus");

    /// <summary>
    /// Binds and validates the options, registers the workers, configures MassTransit on the configured transport
    /// (kebab-case endpoints; retry, redelivery and the in-memory outbox on every endpoint; error queues with
    /// <c>Fault&lt;T&gt;</c>), OpenTelemetry and health checks.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">Configuration (appsettings, environment variables, command line).</param>
    /// <param name="workers">The workers hosted by this process.</param>
    /// <param name="configureBus">Extra registrations (tests, embedded clients).</param>
    public static IServiceCollection AddMeshBus(
        this IServiceCollection services,
        IConfiguration configuration,
        IReadOnlyCollection<IMeshBusWorker> workers,
        Action<IBusRegistrationConfigurator>? configureBus = null)
    {
        services.AddOptions<MeshBusOptions>().BindConfiguration(MeshBusOptions.Section).ValidateOnStart();
        services.AddOptions<RabbitMqTransportOptions>().BindConfiguration(RabbitMqTransportOptions.Section).ValidateOnStart();
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section).ValidateOnStart();
        services.AddOptions<HealthOptions>().BindConfiguration(HealthOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<HealthOptions>, HealthOptionsValidator>());
        services.AddOptions<AgentIngressOptions>().BindConfiguration(AgentIngressOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AgentIngressOptions>, AgentIngressOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshBusOptions>, MeshBusOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RabbitMqTransportOptions>, RabbitMqOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddMeshBusStorage();

        foreach (var worker in workers)
        {
            worker.ConfigureServices(services, configuration);
        }

        var transport = configuration.GetSection(MeshBusOptions.Section).GetValue(nameof(MeshBusOptions.Transport), TransportKind.InMemory);
        var prefix = transport == TransportKind.RabbitMq
            ? configuration.GetSection(RabbitMqTransportOptions.Section).GetValue(nameof(RabbitMqTransportOptions.EntityPrefix), "") ?? ""
            : "";
        var endpointNames = new MeshBusEndpointNameFormatter(prefix);
        services.TryAddSingleton(endpointNames);
        if (transport == TransportKind.RabbitMq)
        {
            var meshBus = configuration.GetSection(MeshBusOptions.Section).Get<MeshBusOptions>() ?? new MeshBusOptions();
            var storage = configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
            if (storage.Provider != StorageProvider.Postgres || !string.IsNullOrWhiteSpace(storage.ConnectionString))
            {
                // Clustered on PostgreSQL: replicas share one schedule and recover a dead node's triggers.
                // SQLite is one process's file: each worker process keeps its own, so two never fire one trigger.
                var store = MeshBusStorage.SqlStore(configuration, "scheduler-" + string.Join('+', workers.Select(w => w.Name)) + ".db");
                services.AddMeshBusQuartz(store, clustered: storage.Provider == StorageProvider.Postgres, o =>
                {
                    o.SchedulerName = "meshbus-" + (string.IsNullOrWhiteSpace(meshBus.Domain) ? "unnamed" : meshBus.Domain.Replace('/', '.'));
                });
            }
        }

        services.AddMassTransit(x =>
        {
            x.SetEndpointNameFormatter(endpointNames);
            // No usage reports leave a governance mesh's processes unless an operator decides so (not configurable here).
            x.DisableUsageTelemetry();
            foreach (var worker in workers)
            {
                worker.ConfigureBus(x);
            }

            configureBus?.Invoke(x);
            x.AddConfigureEndpointsCallback((context, name, endpoint) =>
            {
                var options = context.GetRequiredService<IOptions<MeshBusOptions>>().Value;
                context.GetService<ErrorQueueDepthGauge>()?.Track(name);
                // Outermost: later redelivery through the scheduler; then immediate retries; innermost: the outbox,
                // so messages a consumer publishes leave only when it succeeds (DESIGN.md §5).
                // A message that cannot be read, or has not the shape of its contract, fails the same way every time:
                // it goes to the error queue at once instead of through the retries.
                if (options.RedeliveryIntervals.Count > 0)
                {
                    var intervals = options.RedeliveryIntervals.Select(TimeSpan.FromSeconds).ToArray();
                    if (transport == TransportKind.InMemory)
                    {
                        endpoint.UseDelayedRedelivery(r => IgnoreUnreadable(r).Intervals(intervals));
                    }
                    else
                    {
                        endpoint.UseScheduledRedelivery(r => IgnoreUnreadable(r).Intervals(intervals));
                    }
                }

                endpoint.UseMessageRetry(r => IgnoreUnreadable(r).Immediate(options.ImmediateRetries));
                endpoint.UseInMemoryOutbox(context);
                endpoint.UseConsumeFilter(typeof(ContractShapeFilter<>), context);
            });

            if (transport == TransportKind.RabbitMq)
            {
                MeshBusTransports.UseRabbitMq(x, prefix);
            }
            else
            {
                MeshBusTransports.UseInMemory(x);
            }
        });

        if (transport == TransportKind.RabbitMq)
        {
            services.TryAddSingleton<ErrorQueueDepthGauge>();
            services.AddHostedService(sp => sp.GetRequiredService<ErrorQueueDepthGauge>());
        }

        AddTelemetry(services, workers);
        services.TryAddSingleton<WorkerReadiness>();
        services.AddHealthChecks()
            .AddCheck<StorageHealthCheck>("storage", tags: ["ready"])
            .AddCheck<WorkerReadinessHealthCheck>("worker", tags: ["ready"]);
        services.AddHostedService<ReadinessStartReport>();
        services.AddHostedService<HealthEndpointService>();
        return services;
    }

    private static IRetryConfigurator IgnoreUnreadable(IRetryConfigurator retry)
    {
        retry.Ignore<RejectedMessageException>();
        retry.Ignore<System.Runtime.Serialization.SerializationException>();
        retry.Ignore<System.Text.Json.JsonException>();
        return retry;
    }

    private static void AddTelemetry(IServiceCollection services, IReadOnlyCollection<IMeshBusWorker> workers)
    {
        var otel = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(
                serviceName: "meshbus-" + string.Join('+', workers.Select(w => w.Name)),
                serviceNamespace: "meshbus"))
            // System.Runtime: the runtime's own meter (GC, allocated bytes, working set, thread pool), so an operator and
            // the load tool (bench/MeshBus.Load) read a worker's memory and allocation from its /metrics.
            .WithMetrics(m => m.AddMeter(InstrumentationOptions.MeterName).AddMeter(Meter.Name).AddMeter(RuntimeMeterName).AddPrometheusExporter());
        // Export only where a collector is named: a newcomer's run must not try to reach one. Traces exist only to be
        // exported: without a collector no span is recorded at all (MassTransit then creates no activity per send, receive
        // and consume — measured by bench/MeshBus.Load as part of the hosted path's cost).
        if (!string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(OtlpEndpointVariable)))
        {
            otel.WithTracing(t => t.AddSource(DiagnosticHeaders.DefaultListenerName).AddSource(ActivitySource.Name));
            otel.UseOtlpExporter();
        }
    }
}
