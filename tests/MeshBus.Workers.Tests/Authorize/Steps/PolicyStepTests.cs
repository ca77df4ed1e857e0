using MeshBus.Contracts;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Steps;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize.Steps;

public sealed class PolicyStepTests
{
    private readonly TestDomainKeys _keys = new();
    private readonly TestPolicy _policy = new();
    private readonly ScriptedEgress _egress = new();

    private PolicyStep Step => new(_policy, _egress, NullLogger<PolicyStep>.Instance);

    private VerifiedIntent Intent(string action = "deploy") => StepFixtures.Verified(_keys, new TestAgent(_keys), _keys.Start, action);

    [Fact]
    public void An_allow_rule_allows()
    {
        var outcome = Step.Target(Intent(), _keys.Start);

        Assert.True(outcome.Allowed);
        Assert.Equal(["allow-deploy"], outcome.MatchedRules);
    }

    [Fact]
    public void A_policy_that_throws_is_a_policy_error_denial_on_every_path()
    {
        _policy.Throws = true;
        _egress.Throws = true;
        var v = Intent();

        foreach (var outcome in new[] { Step.Target(v, _keys.Start), Step.Egress(v, _keys.Start), Step.Endorsed(v, "globex.example/prod", null, _keys.Start) })
        {
            Assert.False(outcome.Allowed);
            Assert.Equal(GovernanceReason.PolicyError, outcome.Reason);
            Assert.Contains("failed to evaluate", outcome.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_renewal_whose_policy_throws_is_revoked_and_says_why()
    {
        _policy.Throws = true;

        var outcome = Step.Renewal(Intent(), _keys.Start);

        Assert.False(outcome.Allowed);
        Assert.Equal(GovernanceReason.PolicyRevoked, outcome.Reason);
        Assert.StartsWith("PolicyError: policy evaluation failed", outcome.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_allow_that_carries_a_reason_is_not_an_allow()
    {
        _egress.Outcome = new PolicyOutcome(true, GovernanceReason.SyncStale, "confused", [], null, 1, "d");

        Assert.False(Step.Egress(Intent(), _keys.Start).Allowed);
    }

    [Fact]
    public void An_endorsed_intent_decided_under_another_federation_policy_is_a_federation_mismatch()
    {
        var outcome = Step.Endorsed(Intent(), "globex.example/prod", "sha256:theirs", _keys.Start);

        Assert.False(outcome.Allowed);
        Assert.Equal(GovernanceReason.FederationMismatch, outcome.Reason);
        Assert.True(Step.Endorsed(Intent(), "globex.example/prod", null, _keys.Start).Allowed);
    }

    private sealed class ScriptedEgress : IEgressPolicy
    {
        public bool Throws { get; set; }

        public PolicyOutcome Outcome { get; set; } = new(true, GovernanceReason.None, "allowed", ["egress"], null, 3, "sha256:e");

        public long LoadedEpoch => 3;

        public PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now) =>
            Throws ? throw new InvalidOperationException("egress rule failed to evaluate") : Outcome;
    }
}
