using MassTransit;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Consumers;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Federation;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize;

/// <summary>The authorize worker's composition: its services and its consumers.</summary>
public sealed class AuthorizeWorker : IMeshBusWorker
{
    /// <inheritdoc />
    public string Name => "authorize";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AuthorizeOptions>().BindConfiguration(AuthorizeOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AuthorizeOptions>, AuthorizeOptionsValidator>());
        services.TryAddSingleton<ISyncState, SyncState>();
        services.TryAddSingleton<ILoadedGovernance, LoadedGovernance>();
        services.TryAddSingleton<IntentAuthorizer>();
        services.TryAddSingleton<AgentAnswerSigner>();
        // Cross-domain: the origin's egress decision and endorsement, the target's decision on an endorsement.
        services.TryAddSingleton<EgressEndorser>();
        services.TryAddSingleton<EndorsedIntentAuthorizer>();
        // Identity and grants on the trust library; AuthorizeKeys (resolver, grant key, key set sequence) comes from the
        // domain's key directory. The policy engine registers IDecisionPolicy.
        services.TryAddSingleton<IIntentVerifier, TrustIntentVerifier>();
        services.TryAddSingleton<IGrantSigner, TrustGrantSigner>();
        services.TryAddSingleton<PolicyStoreDecisionPolicy>();
        services.TryAddSingleton<IDecisionPolicy>(sp => sp.GetRequiredService<PolicyStoreDecisionPolicy>());
        services.TryAddSingleton<IEgressPolicy>(sp => sp.GetRequiredService<PolicyStoreDecisionPolicy>());
        services.TryAddSingleton(sp =>
        {
            // Only the grant key's private half; verification keys come from the signed key set and the trust config.
            var domainKeys = sp.GetService<DomainKeys>()
                ?? DomainKeys.Load(sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory, KeyUsage.Grant);
            var now = sp.GetRequiredService<TimeProvider>().GetUtcNow();
            return new AuthorizeKeys(domainKeys.LoadTrust(), domainKeys.Signer(KeyUsage.Grant, now), domainKeys.KeySet.Sequence);
        });
        // Quarantine and nonces share one bounded pool; the lineage log has its own (Authorize:DatabasePoolSize each).
        services.TryAddSingleton(sp => new AuthorizeDatabase(
            sp.GetRequiredService<IOptions<StorageOptions>>().Value, sp.GetRequiredService<IOptions<AuthorizeOptions>>().Value, DataDirectory(sp)));
        services.TryAddSingleton<IQuarantineState>(sp =>
        {
            var db = sp.GetRequiredService<AuthorizeDatabase>();
            return db.Postgres is { } pg ? new PostgresQuarantineState(pg) : new SqliteQuarantineState(db.SqlitePath);
        });
        services.TryAddSingleton<INonceStore>(sp =>
        {
            var db = sp.GetRequiredService<AuthorizeDatabase>();
            return db.Postgres is { } pg ? new PostgresNonceStore(pg) : new SqliteNonceStore(db.SqlitePath);
        });
        services.AddHostedService<NoncePruner>();
        // The domain's lineage log; a process hosting several workers shares one registration (TryAdd).
        services.TryAddSingleton<ILineageLog>(sp =>
        {
            var storage = sp.GetRequiredService<IOptions<StorageOptions>>().Value;
            var options = new LineageLogOptions { TimeProvider = sp.GetRequiredService<TimeProvider>() };
            return storage.Provider == StorageProvider.Postgres
                ? LineageLogs.OpenPostgresAsync(
                    AuthorizeDatabase.Bounded(storage.ConnectionString!, sp.GetRequiredService<IOptions<AuthorizeOptions>>().Value.DatabasePoolSize), options)
                    .GetAwaiter().GetResult()
                : LineageLogs.OpenSqlite(Path.Combine(DataDirectory(sp), "lineage.db"), options);
        });
    }

    /// <inheritdoc />
    public void ConfigureBus(IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<IntentSubmittedConsumer, IntentSubmittedConsumerDefinition>();
        bus.AddConsumer<IntentEndorsedConsumer, IntentEndorsedConsumerDefinition>();
        bus.AddConsumer<EvaluateIntentConsumer, EvaluateIntentConsumerDefinition>();
        bus.AddConsumer<GovernanceStateConsumer, GovernanceStateConsumerDefinition>();
        bus.AddConsumer<QuarantineConsumer, QuarantineConsumerDefinition>();
    }

    private static string DataDirectory(IServiceProvider sp)
    {
        var dir = sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.DataDirectory;
        Directory.CreateDirectory(dir);
        return dir;
    }
}
