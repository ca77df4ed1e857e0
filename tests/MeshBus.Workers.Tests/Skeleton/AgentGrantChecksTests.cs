using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Trust;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>
/// The agent-side half of phase 4: the SDK turns a grant into a lease only when it is bound to this intent, this agent
/// and the target domain, and does not roll back a policy epoch of its signed issuer. Each grant here is validly signed
/// by the domain's grant key with exactly one claim wrong.
/// </summary>
public sealed class AgentGrantChecksTests
{
    private static readonly IntentRequest Deploy = new("deploy", "k8s://cluster-a/ns/web") { MaxDuration = TimeSpan.FromMinutes(5) };

    private static async Task<IntentOutcome> SubmitWithAsync(Func<GrantClaims, GrantClaims> rewrite, IntentRequest? request = null)
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        mesh.Authorizer.Rewrite = rewrite;
        return await agent.SubmitIntentAsync(request ?? Deploy);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_grant_bound_to_another_intent_digest_is_refused_by_the_agent()
    {
        var outcome = await SubmitWithAsync(c => c with { IntentDigest = "sha256:" + new string('0', 64) });

        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Contains("intent digest", outcome.Denial.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_grant_naming_another_intent_id_is_refused_by_the_agent()
    {
        var outcome = await SubmitWithAsync(c => c with { IntentId = Guid.NewGuid() });

        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Contains("another intent or agent", outcome.Denial.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_grant_naming_another_agent_is_refused_by_the_agent()
    {
        var outcome = await SubmitWithAsync(c => c with { Subject = c.Subject + "-other" });

        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Contains("another intent or agent", outcome.Denial.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_grant_for_another_audience_is_refused_by_the_agent()
    {
        var outcome = await SubmitWithAsync(c => c with { Audience = "globex.example/prod" });

        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Contains("audience", outcome.Denial.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_grant_for_a_cross_domain_intent_must_come_from_the_target_not_the_home_domain()
    {
        // The stand-in answers as the home domain (iss = aud = home): a lease for work at globex needs globex's grant.
        var outcome = await SubmitWithAsync(c => c with { Audience = SkeletonHarness.Domain }, Deploy with { TargetDomain = "globex.example/prod" });

        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Contains("globex.example/prod", outcome.Denial.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_rollback_floor_is_keyed_on_the_signed_issuer_not_the_messages_domain()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        mesh.Authorizer.PolicyEpoch = 5;
        Assert.True((await agent.SubmitIntentAsync(Deploy)).IsGranted);

        // The same issuer rolls back, while the unsigned GrantIssued.Domain names a domain with no floor.
        mesh.Authorizer.PolicyEpoch = 4;
        mesh.Authorizer.MessageDomain = "globex.example/prod";
        var outcome = await agent.SubmitIntentAsync(Deploy);

        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Equal(GovernanceReason.PolicyRevoked, outcome.Denial.Reason);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_grant_relying_on_an_older_federation_epoch_than_already_seen_is_refused_by_the_agent()
    {
        await using var mesh = await SkeletonHarness.StartAsync();
        var agent = await mesh.AgentAsync();
        mesh.Authorizer.Rewrite = c => c with { Policies = [.. c.Policies, new PolicyVersion("acme-globex", PolicyScope.Federation, 3, "sha256:ff")] };
        Assert.True((await agent.SubmitIntentAsync(Deploy)).IsGranted);

        mesh.Authorizer.Rewrite = c => c with { Policies = [.. c.Policies, new PolicyVersion("acme-globex", PolicyScope.Federation, 2, "sha256:ee")] };
        var outcome = await agent.SubmitIntentAsync(Deploy);

        Assert.True(outcome.Denial!.RejectedByAgent);
        Assert.Equal(GovernanceReason.PolicyRevoked, outcome.Denial.Reason);
    }
}
