using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class PolicyStoreTests
{
    private const string Domain = "acme.example/prod";
    private static readonly PolicySigners Signers = PolicySigners.AnyKnownKey(id => id == "acme-policy-1" ? TestBundles.Pub(TestBundles.DomainKey) : null);

    private static string Signed(long epoch, Action<System.Text.Json.Nodes.JsonObject>? edit = null) =>
        PolicyBundleSigning.Sign(TestBundles.Edit(TestBundles.Simple, o =>
        {
            o["epoch"] = epoch;
            edit?.Invoke(o);
        }), "acme-policy-1", TestBundles.DomainKey);

    private static PolicyBundleErrorKind Refusal(Action load) =>
        Assert.Throws<PolicyBundleException>(load).Errors[0].Kind;

    [Fact]
    public void A_signed_bundle_is_loaded_and_decides()
    {
        var store = new PolicyStore();
        var result = store.Load(Signed(7), Signers);
        Assert.Equal(PolicyLoadOutcome.Loaded, result.Outcome);
        var d = store.Decide(Inputs.Make(), (PolicyScope.Domain, Domain));
        Assert.True(d.Allowed, d.Detail);
        Assert.Equal(7, d.Epoch);
        Assert.Equal(result.Policy.Version.Digest, d.Digest);
    }

    [Fact]
    public void A_redelivered_bundle_is_already_current_and_a_newer_one_replaces_it()
    {
        var store = new PolicyStore();
        store.Load(Signed(7), Signers);
        Assert.Equal(PolicyLoadOutcome.AlreadyCurrent, store.Load(Signed(7), Signers).Outcome);
        Assert.Equal(PolicyLoadOutcome.Loaded, store.Load(Signed(8), Signers).Outcome);
        Assert.Equal(8, store.Current(PolicyScope.Domain, Domain)!.Version.Epoch);
    }

    [Fact]
    public void An_older_epoch_is_refused_and_the_current_policy_stays()
    {
        var store = new PolicyStore();
        store.Load(Signed(8), Signers);
        Assert.Equal(PolicyBundleErrorKind.EpochRollback, Refusal(() => store.Load(Signed(7), Signers)));
        Assert.Equal(8, store.Current(PolicyScope.Domain, Domain)!.Version.Epoch);
    }

    [Fact]
    public void Another_bundle_under_the_same_epoch_is_refused()
    {
        var store = new PolicyStore();
        store.Load(Signed(8), Signers);
        var other = Signed(8, o => o["rules"]![1]!["effect"] = "allow");
        Assert.Equal(PolicyBundleErrorKind.EpochRollback, Refusal(() => store.Load(other, Signers)));
    }

    [Fact]
    public void A_remembered_high_water_mark_refuses_rollback_after_a_restart()
    {
        var store = new PolicyStore();
        store.SetMinimumEpoch(PolicyScope.Domain, Domain, 9);
        Assert.Equal(PolicyBundleErrorKind.EpochRollback, Refusal(() => store.Load(Signed(8), Signers)));
        Assert.Equal(PolicyLoadOutcome.Loaded, store.Load(Signed(9), Signers).Outcome);
    }

    [Fact]
    public void A_tampered_bundle_is_refused_and_the_current_policy_stays()
    {
        var store = new PolicyStore();
        store.Load(Signed(7), Signers);
        var tamperedKeepingDigest = TestBundles.Edit(Signed(8), o => o["rules"]![1]!["effect"] = "allow");
        Assert.Equal(PolicyBundleErrorKind.DigestMismatch, Refusal(() => store.Load(tamperedKeepingDigest, Signers)));
        var tamperedDroppingDigest = TestBundles.Edit(Signed(8), o =>
        {
            o["rules"]![1]!["effect"] = "allow";
            o.Remove("digest");
        });
        Assert.Equal(PolicyBundleErrorKind.Signature, Refusal(() => store.Load(tamperedDroppingDigest, Signers)));
        Assert.Equal(7, store.Current(PolicyScope.Domain, Domain)!.Version.Epoch);
    }

    [Fact]
    public void An_unsigned_bundle_is_refused()
    {
        Assert.Equal(PolicyBundleErrorKind.Signature, Refusal(() => new PolicyStore().Load(TestBundles.Simple, Signers)));
    }

    [Fact]
    public void A_signed_bundle_with_one_bad_rule_is_refused_whole_naming_the_rule()
    {
        var bad = Signed(9, o => o["rules"]![1]!["condition"] = "agent.nope");
        var store = new PolicyStore();
        var e = Assert.Throws<PolicyBundleException>(() => store.Load(bad, Signers));
        Assert.Equal("deny-db", e.Errors[0].RuleId);
        Assert.Equal(1, e.Errors[0].RuleIndex);
        Assert.Null(store.Current(PolicyScope.Domain, Domain));
    }

    [Fact]
    public void A_bundle_for_another_scope_or_domain_than_expected_is_refused()
    {
        var store = new PolicyStore();
        Assert.Equal(PolicyBundleErrorKind.WrongScope, Refusal(() => store.Load(Signed(7), Signers, PolicyScope.Federation)));
        Assert.Equal(PolicyBundleErrorKind.WrongScope, Refusal(() => store.Load(Signed(7), Signers, PolicyScope.Domain, "globex.example/prod")));
    }

    [Fact]
    public void A_decision_needing_a_bundle_that_is_not_loaded_denies_as_sync_stale()
    {
        var store = new PolicyStore();
        store.Load(Signed(7), Signers);
        var d = store.Decide(Inputs.Make(), (PolicyScope.Domain, Domain), (PolicyScope.Federation, "acme-globex"));
        Assert.False(d.Allowed);
        Assert.Equal(GovernanceReason.SyncStale, d.Reason);
        Assert.Contains("federation policy of acme-globex", d.Detail, StringComparison.Ordinal);
        Assert.Equal(GovernanceReason.SyncStale, store.Decide(Inputs.Make()).Reason);
    }

    [Fact]
    public void A_federation_bundle_loads_only_with_every_member_signature()
    {
        var federation = TestBundles.Edit(TestBundles.Simple, o =>
        {
            o["scope"] = "federation";
            o["domain"] = "acme-globex";
        });
        var members = PolicySigners.EveryKey(new Dictionary<string, byte[]>
        {
            ["acme-root"] = TestBundles.Pub(TestBundles.DomainKey),
            ["globex-root"] = TestBundles.Pub(TestBundles.OtherKey),
        });
        var store = new PolicyStore();
        var half = PolicyBundleSigning.Sign(federation, "acme-root", TestBundles.DomainKey);
        Assert.Equal(PolicyBundleErrorKind.Signature, Refusal(() => store.Load(half, members, PolicyScope.Federation)));
        var full = PolicyBundleSigning.Sign(half, "globex-root", TestBundles.OtherKey);
        Assert.Equal(PolicyLoadOutcome.Loaded, store.Load(full, members, PolicyScope.Federation).Outcome);
        store.Load(Signed(7), Signers);
        var d = store.Decide(Inputs.Make(), (PolicyScope.Domain, Domain), (PolicyScope.Federation, "acme-globex"));
        Assert.True(d.Allowed, d.Detail);
        Assert.Equal(["domain:allow-deploy", "federation:allow-deploy"], d.MatchedRules);
    }

    [Fact]
    public async Task Concurrent_decisions_during_loads_always_see_a_whole_bundle()
    {
        var store = new PolicyStore();
        store.Load(Signed(1), Signers);
        var bundles = Enumerable.Range(2, 30).Select(e => Signed(e)).ToList();
        var loader = Task.Run(() =>
        {
            foreach (var b in bundles)
            {
                store.Load(b, Signers);
            }
        });
        var epochs = new List<long>();
        while (!loader.IsCompleted)
        {
            var d = store.Decide(Inputs.Make(), (PolicyScope.Domain, Domain));
            Assert.True(d.Allowed, d.Detail);
            epochs.Add(d.Epoch);
        }

        await loader;
        Assert.Equal(epochs.Order(), epochs);
        Assert.Equal(31, store.Current(PolicyScope.Domain, Domain)!.Version.Epoch);
    }
}
