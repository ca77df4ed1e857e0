using MassTransit;
using MeshBus.Federation;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Persistence;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Enforce;
using MeshBus.Workers.Enforce.Lifecycle;
using MeshBus.Workers.Lineage;
using MeshBus.Workers.Sync;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MeshBus.Embedded;

/// <summary>Where an embedded mesh keeps its state and which policy it starts with.</summary>
/// <param name="Domain">The domain served, e.g. <c>acme.example/prod</c>.</param>
/// <param name="DataDirectory">SQLite files (lineage, sagas, the workers' tables).</param>
/// <param name="KeyDirectory">The domain directory (<c>meshbus keys init</c>).</param>
/// <param name="PolicyBundleFile">A signed policy bundle that Sync applies and Authorize loads at start, or null.</param>
public sealed record EmbeddedMeshOptions(string Domain, string DataDirectory, string KeyDirectory, string? PolicyBundleFile = null)
{
    /// <summary>A signed egress policy bundle (what this domain's agents may do in peer domains) that Authorize loads at start.</summary>
    public string? EgressPolicyBundleFile { get; init; }

    /// <summary>
    /// The in-process network joining this domain to others in the process (<see cref="EmbeddedFederation"/>): Sync then
    /// hosts the federation bridge on it, with the same envelopes, checks and relay table as over NATS. Null: no bridge.
    /// </summary>
    public InProcessFederationNetwork? Federation { get; init; }

    /// <summary>
    /// Another link for the bridge instead of <see cref="Federation"/>'s, e.g. a <see cref="NatsFederationLink"/> as
    /// this domain's NATS user (the same bridge over JetStream); its creator disposes it after the mesh.
    /// </summary>
    public IFederationLink? FederationLink { get; init; }

    /// <summary>
    /// More settings, by configuration key (e.g. <c>Sync:FederationName</c>, or <c>Sync:HeartbeatInterval</c> =
    /// <c>00:00:00.5</c> for a short demo), applied over the ones these options make; they are validated on start like
    /// every worker's. Null: none.
    /// </summary>
    public IReadOnlyDictionary<string, string?>? Settings { get; init; }

    /// <summary>
    /// Adds services to the host before it is built, e.g. a MassTransit observer (<c>AddPublishObserver</c>) that sees
    /// every message of this domain's bus from the start. Null: none.
    /// </summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }
}

/// <summary>
/// One domain's four workers (Sync, Authorize, Enforce, Lineage) in this process: MassTransit's in-memory transport,
/// SQLite under the data directory, the hosting's defaults. The <c>meshbus demo</c> command and tests start it here,
/// so neither references the worker executables themselves.
/// </summary>
public sealed class EmbeddedMesh : IAsyncDisposable
{
    private readonly IHost _host;

    private EmbeddedMesh(IHost host, string domain)
    {
        _host = host;
        Domain = domain;
    }

    /// <summary>The domain served.</summary>
    public string Domain { get; }

    /// <summary>The names of the hosted workers.</summary>
    public static IReadOnlyList<string> WorkerNames { get; } = [.. Workers().Select(w => w.Name)];

    /// <summary>The host's services.</summary>
    public IServiceProvider Services => _host.Services;

    /// <summary>The domain's bus.</summary>
    public IBus Bus => _host.Services.GetRequiredService<IBus>();

    /// <summary>The domain's lineage log (the one the workers append to).</summary>
    public ILineageLog Lineage => _host.Services.GetRequiredService<ILineageLog>();

    /// <summary>A fresh set of the four workers.</summary>
    public static IReadOnlyCollection<IMeshBusWorker> Workers() => [new SyncWorker(), new AuthorizeWorker(), new EnforceWorker(), new LineageWorker()];

    /// <summary>
    /// Builds the host, validates its options (an <c>OptionsValidationException</c> names what is wrong) and starts it.
    /// </summary>
    public static async Task<EmbeddedMesh> StartAsync(EmbeddedMeshOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = Host.CreateApplicationBuilder([]);
        builder.Logging.ClearProviders();
        var settings = new Dictionary<string, string?>
        {
            ["MeshBus:Domain"] = options.Domain,
            ["MeshBus:Transport"] = "InMemory",
            ["MeshBus:DataDirectory"] = options.DataDirectory,
            ["MeshBus:KeyDirectory"] = options.KeyDirectory,
        };
        if (options.PolicyBundleFile is { } policy)
        {
            settings["Sync:PolicyBundleFile"] = policy;
            settings["Authorize:PolicyBundleFile"] = policy;
        }

        if (options.EgressPolicyBundleFile is { } egress)
        {
            settings["Authorize:EgressPolicyBundleFile"] = egress;
        }

        if ((options.FederationLink ?? options.Federation?.LinkFor(options.Domain)) is { } link)
        {
            // Embedded: the host registers the link (the bridge worker builds one only for Federation:Link=Nats).
            settings["Federation:Link"] = "InProcess";
            builder.Services.AddSingleton(link);
        }

        foreach (var (key, value) in options.Settings ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddMeshBus(builder.Configuration, Workers());
        options.ConfigureServices?.Invoke(builder.Services);
        var host = builder.Build();
        try
        {
            MeshBusHost.ValidateOptions(host.Services);
            await host.StartAsync(cancellationToken);
            return new EmbeddedMesh(host, options.Domain);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>The lifecycle state of an intent's saga in Enforce (<c>Executing</c>, <c>Halted</c>, ...), or null when it has none.</summary>
    public async Task<string?> LifecycleStateAsync(Guid intentId, CancellationToken cancellationToken = default) =>
        (await _host.Services.GetRequiredService<ISagaStateReader>().LoadAsync<IntentLifecycleState>(intentId, cancellationToken))?.CurrentState;

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            await _host.StopAsync(CancellationToken.None);
        }
        finally
        {
            _host.Dispose();
        }
    }
}
