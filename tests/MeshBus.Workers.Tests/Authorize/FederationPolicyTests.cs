using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>Issue 9 item 2: the target decides with its domain policy and, when configured, the federation policy (deny overrides).</summary>
public sealed class FederationPolicyTests
{
    private const string Federation = "acme-globex";
    private const string Peer = "globex.example/prod";

    private readonly TestDomainKeys _keys = new();
    private readonly RootKey _peerRoot = RootKey.Generate(Peer);

    private TrustConfig Trust => new([_keys.Root.VerifierKey, _peerRoot.VerifierKey], _keys.KeySet);

    private PolicyStoreDecisionPolicy Policy(string? federation = Federation) => new(
        new AuthorizeKeys(Trust, _keys.Signers[KeyUsage.Grant], _keys.KeySet.Sequence) { OwnRoot = _keys.Root.VerifierKey },
        TimeProvider.System,
        Options.Create(new MeshBusOptions { Domain = TestDomainKeys.Domain }),
        Options.Create(new AuthorizeOptions { FederationName = federation }),
        NullLogger<PolicyStoreDecisionPolicy>.Instance);

    private string DomainBundle(ISigner? signer = null) => PolicyBundleSigning.Sign($$"""
        {
          "format": "meshbus-policy/v1", "scope": "domain", "domain": "{{TestDomainKeys.Domain}}", "epoch": 4,
          "rules": [ { "id": "allow-ops", "effect": "allow", "match": { "actions": ["deploy", "scale"], "resources": ["k8s://cluster-a/**"] } } ]
        }
        """, signer ?? _keys.Signers[KeyUsage.Grant]);

    private static string FederationBundle(long epoch = 2) => $$"""
        {
          "format": "meshbus-policy/v1", "scope": "federation", "domain": "{{Federation}}", "epoch": {{epoch}},
          "rules": [
            { "id": "baseline", "effect": "allow", "match": { "actions": ["*"], "resources": ["**"] } },
            { "id": "no-scaling-of-shared-clusters", "effect": "deny", "match": { "actions": ["scale"], "resources": ["k8s://cluster-a/**"] } }
          ]
        }
        """;

    private string SignedByBothRoots(long epoch = 2) =>
        PolicyBundleSigning.SignAsRoot(PolicyBundleSigning.SignAsRoot(FederationBundle(epoch), _keys.Root), _peerRoot);

    private PolicyOutcome Decide(PolicyStoreDecisionPolicy policy, string action)
    {
        var agent = new TestAgent(_keys);
        var intent = agent.Intent(_keys.Start, action: action);
        var credential = new VerifiedCredential(agent.Subject, TestDomainKeys.Domain, Base64Url.Encode(agent.PublicKey), "c-1",
            new Dictionary<string, JsonElement>());
        return policy.Decide(intent, credential, _keys.Start);
    }

    [Fact]
    public void The_federation_policy_denies_what_the_domain_policy_allows_and_is_named_in_the_decision()
    {
        var policy = Policy();
        policy.Load(DomainBundle());
        policy.Load(SignedByBothRoots(), PolicyScope.Federation);

        var allowed = Decide(policy, "deploy");
        Assert.True(allowed.Allowed, allowed.Detail);
        Assert.Equal(2, allowed.FederationEpoch);
        Assert.Equal(Federation, allowed.FederationName);
        Assert.StartsWith("sha256:", allowed.FederationDigest, StringComparison.Ordinal);

        var denied = Decide(policy, "scale");
        Assert.False(denied.Allowed);
        Assert.Equal(GovernanceReason.PolicyDenied, denied.Reason);
        Assert.Contains(denied.MatchedRules, r => r.Contains("no-scaling-of-shared-clusters", StringComparison.Ordinal));
    }

    [Fact]
    public void A_configured_federation_whose_policy_is_not_loaded_denies_everything()
    {
        var policy = Policy();
        policy.Load(DomainBundle());

        var outcome = Decide(policy, "deploy");

        Assert.False(outcome.Allowed);
        Assert.Equal(GovernanceReason.SyncStale, outcome.Reason);
        Assert.Contains(Federation, outcome.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(KeyUsage.Credential)]
    [InlineData(KeyUsage.Envelope)]
    [InlineData(KeyUsage.Log)]
    [InlineData(KeyUsage.Witness)]
    public void A_domain_bundle_signed_by_a_domain_key_of_another_usage_than_grant_is_refused(KeyUsage usage)
    {
        var policy = Policy();
        var byOtherKey = DomainBundle(_keys.Signers[usage]);

        Assert.Throws<PolicyBundleException>(() => policy.Load(byOtherKey, PolicyScope.Domain));
        Assert.Equal(MeshBus.Policy.PolicyLoadOutcome.Loaded, policy.Load(DomainBundle(), PolicyScope.Domain).Outcome);
    }

    [Fact]
    public void A_federation_bundle_missing_a_members_root_signature_is_refused()
    {
        var policy = Policy();
        var onlyOurs = PolicyBundleSigning.SignAsRoot(FederationBundle(), _keys.Root);

        var refused = Assert.Throws<PolicyBundleException>(() => policy.Load(onlyOurs, PolicyScope.Federation));

        Assert.Contains(RootKey.PolicyKeyId(_peerRoot.VerifierKey), refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_federation_bundle_signed_by_working_keys_instead_of_roots_is_refused()
    {
        var policy = Policy();
        var byGrantKey = PolicyBundleSigning.Sign(FederationBundle(), _keys.Signers[KeyUsage.Grant]);

        Assert.Throws<PolicyBundleException>(() => policy.Load(byGrantKey, PolicyScope.Federation));
    }

    [Fact]
    public void A_federation_bundle_of_another_federation_is_refused()
    {
        var policy = Policy("acme-initech");

        Assert.Throws<PolicyBundleException>(() => policy.Load(SignedByBothRoots(), PolicyScope.Federation));
    }

    [Fact]
    public void Without_a_configured_federation_a_federation_bundle_is_not_taken()
    {
        var policy = Policy(federation: null);
        policy.Load(DomainBundle());

        Assert.Throws<InvalidOperationException>(() => policy.Load(SignedByBothRoots(), PolicyScope.Federation));
        Assert.True(Decide(policy, "scale").Allowed);
    }

    [Fact]
    public async Task The_worker_loads_a_published_federation_policy_and_its_grants_name_it()
    {
        var policy = Policy();
        policy.Load(DomainBundle());
        await using var h = await AuthorizeHarness.StartAsync(_keys, configure: s =>
        {
            s.AddSingleton<IDecisionPolicy>(policy);
            s.AddSingleton(policy);
        }, settings: new Dictionary<string, string?> { ["Authorize:FederationName"] = Federation });
        await h.Bus.Publish(_keys.Governance.Sign(new DomainHeartbeat(TestDomainKeys.Domain, 1, h.Time.GetUtcNow(), _keys.KeySet.Sequence, 4, 0, "")));
        var bundle = SignedByBothRoots();
        var parsed = PolicyBundle.Parse(bundle);
        await h.Bus.Publish(new PolicyPublished(Federation, PolicyScope.Federation, parsed.Epoch, parsed.Digest, bundle, h.Time.GetUtcNow()));
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<PolicyPublished>().Any(c => c.Fault is null), "federation policy loaded");
        var agent = new TestAgent(_keys);
        var intent = agent.Intent(h.Time.GetUtcNow());

        await h.SubmitAsync(intent);

        var grant = Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
        var claims = h.VerifyGrant(grant, agent).Value!;
        Assert.Contains(claims.Policies, p => p.Scope == PolicyScope.Federation && p.Domain == Federation && p.Epoch == 2 && p.Digest == parsed.Digest);
        var denied = agent.Intent(h.Time.GetUtcNow(), action: "scale");
        await h.SubmitAsync(denied);
        Assert.Equal(GovernanceReason.PolicyDenied, (await h.DeniedAsync(denied.IntentId, GovernanceReason.PolicyDenied)).Reason);
    }
}
