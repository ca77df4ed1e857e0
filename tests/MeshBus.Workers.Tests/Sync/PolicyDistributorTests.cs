using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Workers.Sync;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Workers.Tests.Sync;

/// <summary>Sync applies only a bundle signed by the domain that compiles; anything else leaves the applied epoch alone.</summary>
public sealed class PolicyDistributorTests : IDisposable
{
    private const string Domain = "acme.example/prod";
    private const string Bundle = """
        {
          "format": "meshbus-policy/v1", "scope": "domain", "domain": "acme.example/prod", "epoch": 3,
          "rules": [ { "id": "allow-deploy", "effect": "allow", "match": { "actions": ["deploy"], "resources": ["**"] } } ]
        }
        """;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-sync-test-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly string _keys;
    private readonly List<IBusControl> _buses = [];
    private readonly System.Collections.Concurrent.ConcurrentQueue<object> _published = new();
    private IReplicaLoadStore? _replicaStore;

    private IReplicaLoadStore Replicas => _replicaStore ??= SqlPeerSyncStore.Sqlite(Path.Combine(_dir, "sync.db"));

    public PolicyDistributorTests()
    {
        _keys = Path.Combine(_dir, "keys");
        DomainAdministration.Initialize(_keys, Domain, DateTimeOffset.UtcNow);
    }

    [Fact]
    public void A_bundle_signed_by_the_domain_is_applied_at_its_epoch()
    {
        var (distributor, governance) = Create(Write(Sign(Bundle)));

        distributor.Apply();

        Assert.Equal(3, governance.Epoch(PolicyScope.Domain));
    }

    [Fact]
    public void A_tampered_bundle_is_refused_and_nothing_is_applied()
    {
        var tampered = Sign(Bundle).Replace("\"deploy\"", "\"delete\"", StringComparison.Ordinal);
        var (distributor, governance) = Create(Write(tampered));

        Assert.Throws<PolicyBundleException>(() => distributor.Apply());
        Assert.Equal(0, governance.Epoch(PolicyScope.Domain));
    }

    [Fact]
    public void An_unsigned_bundle_is_refused_and_nothing_is_applied()
    {
        var (distributor, governance) = Create(Write(Bundle));

        Assert.Throws<PolicyBundleException>(() => distributor.Apply());
        Assert.Equal(0, governance.Epoch(PolicyScope.Domain));
    }

    [Fact]
    public void A_bundle_signed_by_the_domains_credential_key_is_refused_and_nothing_is_applied()
    {
        var byCredentialKey = PolicyBundleSigning.Sign(Bundle, DomainKeys.Load(_keys, KeyUsage.Credential).Signer(KeyUsage.Credential, DateTimeOffset.UtcNow));
        var (distributor, governance) = Create(Write(byCredentialKey));

        Assert.Throws<PolicyBundleException>(() => distributor.Apply());
        Assert.Equal(0, governance.Epoch(PolicyScope.Domain));
    }

    private string Sign(string json) =>
        PolicyBundleSigning.Sign(json, DomainKeys.Load(_keys, KeyUsage.Grant).Signer(KeyUsage.Grant, DateTimeOffset.UtcNow));

    private string Write(string json)
    {
        var path = Path.Combine(_dir, "policy.json");
        File.WriteAllText(path, json);
        return path;
    }

    private readonly WorkerReadiness _readiness = new();

    [Fact]
    public void A_replaced_file_with_a_higher_epoch_is_rolled_out_without_a_restart()
    {
        var file = Write(Sign(Bundle));
        var (distributor, governance) = Create(file);
        distributor.Apply();

        File.WriteAllText(file, Sign(Bundle.Replace("\"epoch\": 3", "\"epoch\": 4", StringComparison.Ordinal)));

        Assert.True(distributor.ApplyIfChanged());
        Assert.Equal(4, governance.Epoch(PolicyScope.Domain));
        Assert.Equal(4, distributor.Applied!.Epoch);
        Assert.False(distributor.ApplyIfChanged());
    }

    [Fact]
    public void A_replaced_file_that_changes_the_rules_without_a_higher_epoch_is_refused_and_the_applied_policy_stays()
    {
        var file = Write(Sign(Bundle));
        var (distributor, governance) = Create(file);
        var applied = distributor.Apply()!;

        File.WriteAllText(file, Sign(Bundle.Replace("\"deploy\"", "\"delete\"", StringComparison.Ordinal)));

        Assert.False(distributor.ApplyIfChanged());
        Assert.Equal(applied, distributor.Applied);
        Assert.Equal(applied.Digest, governance.Digest(PolicyScope.Domain));
        Assert.Empty(_readiness.Problems);
    }

    [Fact]
    public void A_refused_policy_with_none_applied_makes_the_worker_not_ready_until_a_good_one_replaces_it()
    {
        var file = Write(Bundle);
        var (distributor, governance) = Create(file);

        distributor.ApplyIfChanged();
        Assert.Contains("policy", _readiness.Problems.Keys);
        Assert.Equal(0, governance.Epoch(PolicyScope.Domain));

        File.WriteAllText(file, Sign(Bundle));
        Assert.True(distributor.ApplyIfChanged());
        Assert.Empty(_readiness.Problems);
        Assert.Equal(3, governance.Epoch(PolicyScope.Domain));
    }

    [Fact(Timeout = 30_000)]
    public async Task The_acknowledgement_waits_until_every_live_authorize_replica_loaded_the_epoch()
    {
        var (distributor, _) = Create(Write(Sign(Bundle)));
        distributor.Apply();
        var now = DateTimeOffset.UtcNow;
        await Replicas.ReportAsync("authorize-1", now, 3, "", default);
        await Replicas.ReportAsync("authorize-2", now, 2, "", default);

        Assert.False(await distributor.PublishAsync(default));
        Assert.Empty(_published.OfType<PolicySynced>());

        await Replicas.ReportAsync("authorize-2", now, 3, "", default);
        Assert.True(await distributor.PublishAsync(default));
        var ack = Assert.Single(_published.OfType<PolicySynced>());
        Assert.Equal((Domain, Domain, PolicyScope.Domain, 3L), (ack.Domain, ack.Publisher, ack.Scope, ack.Epoch));
    }

    [Fact(Timeout = 30_000)]
    public async Task No_acknowledgement_is_sent_while_no_authorize_replica_reported_recently()
    {
        var (distributor, _) = Create(Write(Sign(Bundle)));
        distributor.Apply();
        await Replicas.ReportAsync("authorize-1", DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1), 3, "", default);

        Assert.False(await distributor.PublishAsync(default));

        Assert.Empty(_published.OfType<PolicySynced>());
        Assert.Single(_published.OfType<PolicyPublished>());
    }

    [Fact(Timeout = 30_000)]
    public async Task A_replica_that_stopped_reporting_no_longer_holds_the_acknowledgement_back()
    {
        var (distributor, _) = Create(Write(Sign(Bundle)));
        distributor.Apply();
        var now = DateTimeOffset.UtcNow;
        await Replicas.ReportAsync("authorize-gone", now - TimeSpan.FromSeconds(11), 2, "", default);
        await Replicas.ReportAsync("authorize-1", now, 3, "", default);

        Assert.True(await distributor.PublishAsync(default));
    }

    private (PolicyDistributor, AppliedGovernance) Create(string policyFile)
    {
        var governance = new AppliedGovernance(1);
        var bus = Bus.Factory.CreateUsingInMemory(_ => { });
        bus.ConnectPublishObserver(new PublishedMessages(_published));
        bus.Start(TimeSpan.FromSeconds(10));
        _buses.Add(bus);
        var distributor = new PolicyDistributor(
            bus,
            governance,
            GovernanceSigner.FromDirectory(_keys, TimeProvider.System),
            Options.Create(new MeshBusOptions { Domain = Domain, DataDirectory = _dir, KeyDirectory = _keys }),
            Options.Create(new SyncOptions { PolicyBundleFile = policyFile }),
            TimeProvider.System,
            _readiness,
            Replicas,
            NullLogger<PolicyDistributor>.Instance);
        return (distributor, governance);
    }

    public void Dispose()
    {
        foreach (var bus in _buses)
        {
            bus.Stop(TimeSpan.FromSeconds(10));
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Every message a bus published.</summary>
internal sealed class PublishedMessages(System.Collections.Concurrent.ConcurrentQueue<object> published) : IPublishObserver
{
    public Task PrePublish<T>(PublishContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PostPublish<T>(PublishContext<T> context)
        where T : class
    {
        published.Enqueue(context.Message);
        return Task.CompletedTask;
    }

    public Task PublishFault<T>(PublishContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
