using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
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

    private (PolicyDistributor, AppliedGovernance) Create(string policyFile)
    {
        var governance = new AppliedGovernance(1);
        var distributor = new PolicyDistributor(
            Bus.Factory.CreateUsingInMemory(_ => { }),
            governance,
            GovernanceSigner.FromDirectory(_keys, TimeProvider.System),
            Options.Create(new MeshBusOptions { Domain = Domain, DataDirectory = _dir, KeyDirectory = _keys }),
            Options.Create(new SyncOptions { PolicyBundleFile = policyFile }),
            TimeProvider.System,
            _readiness,
            NullLogger<PolicyDistributor>.Instance);
        return (distributor, governance);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
