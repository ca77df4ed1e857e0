using MassTransit;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Consumers;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Paths;
using MeshBus.Workers.Authorize.Steps;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize;

/// <summary>The authorize worker's composition: its services and its consumers.</summary>
public sealed class AuthorizeWorker : IMeshBusWorker
{
    /// <summary>The SQLite file of the worker's own tables when embedded.</summary>
    public const string SqliteFile = "authorize.db";

    /// <inheritdoc />
    public string Name => "authorize";

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AuthorizeOptions>().BindConfiguration(AuthorizeOptions.Section).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AuthorizeOptions>, AuthorizeOptionsValidator>());
        services.TryAddSingleton<ISyncState, SyncState>();
        // Peers' sync state: written by Sync, read here on every decision involving the peer (shared by all replicas).
        services.TryAddPeerSyncStore();
        // What this replica loaded, reported for Sync's acknowledgements (PolicySynced waits for every live replica).
        services.TryAddSingleton<ReplicaLoadReporter>();
        services.AddHostedService(sp => sp.GetRequiredService<ReplicaLoadReporter>());
        services.TryAddSingleton<ILoadedGovernance, LoadedGovernance>();
        // The decision's steps, composed by its three paths: an intent of this domain's agent (a grant, or at the origin
        // of a cross-domain intent an endorsement), an endorsed intent from a peer, a renewal.
        services.TryAddSingleton<IdentityStep>();
        services.TryAddSingleton<ReplayStep>();
        services.TryAddSingleton<FreshnessStep>();
        services.TryAddSingleton<PolicyStep>();
        services.TryAddSingleton<RecordThenReleaseStep>();
        services.TryAddSingleton<AgentAnswerSigner>();
        services.TryAddSingleton<EgressEndorser>();
        services.TryAddSingleton<LocalIntentPath>();
        services.TryAddSingleton<EndorsedIntentPath>();
        services.TryAddSingleton<RenewalPath>();
        // Identity and grants on the trust library; AuthorizeKeys (resolver, grant key, key set sequence) comes from the
        // domain's key directory. The policy engine registers IDecisionPolicy.
        services.TryAddSingleton<IIntentVerifier, TrustIntentVerifier>();
        services.TryAddSingleton<IGrantSigner, TrustGrantSigner>();
        services.TryAddSingleton<PolicyStoreDecisionPolicy>();
        services.TryAddSingleton<IDecisionPolicy>(sp => sp.GetRequiredService<PolicyStoreDecisionPolicy>());
        services.TryAddSingleton<IEgressPolicy>(sp => sp.GetRequiredService<PolicyStoreDecisionPolicy>());
        services.TryAddSingleton<IPolicyBundles>(sp => sp.GetRequiredService<PolicyStoreDecisionPolicy>());
        services.TryAddSingleton(sp =>
        {
            // Only the grant key's private half; verification keys come from the signed key set and the trust config.
            var domainKeys = sp.GetService<DomainKeys>()
                ?? DomainKeys.Load(sp.GetRequiredService<IOptions<MeshBusOptions>>().Value.ResolvedKeyDirectory, KeyUsage.Grant);
            var now = sp.GetRequiredService<TimeProvider>().GetUtcNow();
            return new AuthorizeKeys(domainKeys.LoadTrust(), domainKeys.Signer(KeyUsage.Grant, now), domainKeys.KeySet.Sequence) { OwnRoot = domainKeys.Root };
        });
        services.TryAddSingleton(sp => sp.GetRequiredService<AuthorizeKeys>().GovernanceVerifier());
        services.AddHealthChecks().AddCheck<GrantKeyHealthCheck>("keys", tags: ["ready"]);
        // Quarantine and nonces: the worker's own tables, in the storage of the process (Hosting's MeshBusStorage: the
        // shared bounded pool, or authorize.db). The lineage log comes from the same setup (AddMeshBus).
        services.TryAddSingleton<IQuarantineState>(sp =>
        {
            var storage = sp.GetRequiredService<MeshBusStorage>();
            return storage.Provider == StorageProvider.Postgres
                ? new PostgresQuarantineState(storage.Postgres)
                : new SqliteQuarantineState(storage.SqlitePath(SqliteFile));
        });
        services.TryAddSingleton<INonceStore>(sp =>
        {
            var storage = sp.GetRequiredService<MeshBusStorage>();
            return storage.Provider == StorageProvider.Postgres
                ? new PostgresNonceStore(storage.Postgres)
                : new SqliteNonceStore(storage.SqlitePath(SqliteFile));
        });
        services.AddHostedService<NoncePruner>();
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
}
