using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>
/// The decision rules with the real policy engine (CEL conditions) and a real bundle signed by the domain's grant key,
/// instead of the stand-in policy the other Authorize tests decide with.
/// </summary>
public sealed class RealPolicyRuleTests
{
    private const long Epoch = 4;
    private readonly TestDomainKeys _keys = new();

    private string Bundle() => PolicyBundleSigning.Sign($$"""
        {
          "format": "meshbus-policy/v1", "scope": "domain", "domain": "{{TestDomainKeys.Domain}}", "epoch": {{Epoch}},
          "rules": [
            { "id": "deployers-deploy", "effect": "allow", "match": { "actions": ["deploy"], "resources": ["k8s://cluster-a/**"] },
              "condition": "'deployers' in agent.claims.groups && intent.parameters.replicas <= 10" },
            { "id": "no-delete", "effect": "deny", "match": { "actions": ["delete"], "resources": ["**"] } },
            { "id": "anyone-scales", "effect": "allow", "match": { "actions": ["scale", "delete"], "resources": ["**"] } }
          ]
        }
        """, _keys.Signers[KeyUsage.Grant]);

    private async Task<AuthorizeHarness> StartAsync()
    {
        var policy = new PolicyStoreDecisionPolicy(
            _keys.AuthorizeKeys, TimeProvider.System,
            Options.Create(new MeshBusOptions { Domain = TestDomainKeys.Domain }), Options.Create(new AuthorizeOptions()),
            NullLogger<PolicyStoreDecisionPolicy>.Instance);
        policy.Load(Bundle(), PolicyScope.Domain);
        var h = await AuthorizeHarness.StartAsync(_keys, configure: s =>
        {
            s.AddSingleton<IDecisionPolicy>(policy);
            s.AddSingleton(policy);
        });
        await h.HeartbeatAsync(policyEpoch: Epoch);
        return h;
    }

    private static async Task<GrantDenied> DecideDeniedAsync(AuthorizeHarness h, IntentSubmitted intent, GovernanceReason reason)
    {
        await h.SubmitAsync(intent);
        return await h.DeniedAsync(intent.IntentId, reason);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_allow_rule_whose_cel_condition_holds_grants_and_the_grant_names_the_signed_bundle()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(_keys);
        var intent = agent.Intent(h.Time.GetUtcNow());

        await h.SubmitAsync(intent);

        var grant = Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
        var claims = h.VerifyGrant(grant, agent).Value!;
        Assert.Contains(claims.Policies, p => p.Scope == PolicyScope.Domain && p.Epoch == Epoch && p.Digest == PolicyBundle.Parse(Bundle()).Digest);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_allow_rule_whose_cel_condition_fails_matches_nothing()
    {
        await using var h = await StartAsync();
        var intent = new TestAgent(_keys).Intent(h.Time.GetUtcNow(), parameters: """{"replicas":300}""");

        var denied = await DecideDeniedAsync(h, intent, GovernanceReason.NoMatchingRule);

        Assert.NotNull(denied.LineageIndex);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_deny_rule_overrides_an_allow_rule()
    {
        await using var h = await StartAsync();
        var intent = new TestAgent(_keys).Intent(h.Time.GetUtcNow(), action: "delete");

        var denied = await DecideDeniedAsync(h, intent, GovernanceReason.PolicyDenied);

        Assert.Contains("no-delete", denied.MatchedRules);
    }

    [Fact(Timeout = 60_000)]
    public async Task An_action_no_rule_matches_is_denied()
    {
        await using var h = await StartAsync();

        await DecideDeniedAsync(h, new TestAgent(_keys).Intent(h.Time.GetUtcNow(), action: "restart"), GovernanceReason.NoMatchingRule);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_applied_epoch_must_be_the_loaded_bundles_epoch()
    {
        await using var h = await StartAsync();
        await h.HeartbeatAsync(policyEpoch: Epoch + 1);
        var intent = new TestAgent(_keys).Intent(h.Time.GetUtcNow().AddSeconds(-25));

        var denied = await DecideDeniedAsync(h, intent, GovernanceReason.SyncStale);

        Assert.Contains("epoch", denied.Detail, StringComparison.Ordinal);
    }
}
