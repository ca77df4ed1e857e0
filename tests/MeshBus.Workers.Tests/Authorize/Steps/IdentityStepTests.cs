using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Decisions;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize.Steps;

public sealed class IdentityStepTests
{
    private readonly TestDomainKeys _keys = new();

    private DateTimeOffset Now => _keys.Start;

    [Fact]
    public void An_intent_signed_with_the_credentials_key_verifies_with_its_canonical_digest()
    {
        var agent = new TestAgent(_keys);
        var identity = StepFixtures.Identity(_keys);
        var intent = agent.Intent(Now);

        var (credential, refusal) = identity.Sender(intent, Now);
        var result = identity.Local(intent, credential!);

        Assert.Null(refusal);
        Assert.Equal(agent.Subject, result.Verified!.Agent);
        Assert.Equal(IntentSignature.Digest(intent), result.Verified.Digest);
    }

    [Fact]
    public void An_intent_changed_after_signing_is_refused_to_its_verified_sender()
    {
        var agent = new TestAgent(_keys);
        var identity = StepFixtures.Identity(_keys);
        var intent = agent.Intent(Now) with { Action = "delete" };

        var (credential, _) = identity.Sender(intent, Now);
        var result = identity.Local(intent, credential!);

        Assert.Null(result.Verified);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Refusal!.Reason);
        Assert.Equal(agent.Subject, result.Refusal.VerifiedSubject);
    }

    [Fact]
    public void An_intent_that_names_another_agent_than_its_credential_is_refused()
    {
        var agent = new TestAgent(_keys);
        var identity = StepFixtures.Identity(_keys);
        var intent = agent.Intent(Now) with { Agent = TestDomainKeys.Domain + "/agents/other" };

        var (credential, _) = identity.Sender(intent, Now);

        Assert.Equal(GovernanceReason.CredentialInvalid, identity.Local(intent, credential!).Refusal!.Reason);
    }

    [Fact]
    public void An_intent_without_a_credential_has_nobody_to_answer()
    {
        var intent = new TestAgent(_keys).Intent(Now) with { Credential = "" };

        var e = Assert.Throws<UnroutableIntentException>(() => StepFixtures.Identity(_keys).Sender(intent, Now));
        Assert.Equal(GovernanceReason.MalformedInput, e.Reason);
    }

    [Fact]
    public void An_expired_credential_is_refused_to_the_subject_its_signature_proves()
    {
        var agent = new TestAgent(_keys, credentialLifetime: TimeSpan.FromMinutes(1));
        var intent = agent.Intent(Now.AddHours(1));

        var (credential, refusal) = StepFixtures.Identity(_keys).Sender(intent, Now.AddHours(1));

        Assert.Null(credential);
        Assert.Equal(GovernanceReason.CredentialExpired, refusal!.Reason);
        Assert.Equal(agent.Subject, refusal.VerifiedSubject);
    }

    [Fact]
    public void An_endorsed_intent_must_carry_a_credential_of_the_endorsing_home_domain()
    {
        var agent = new TestAgent(_keys);
        var identity = StepFixtures.Identity(_keys);
        var intent = agent.Intent(Now);
        var (credential, _) = identity.Sender(intent, Now);

        Assert.NotNull(identity.Endorsed(intent, credential!, TestDomainKeys.Domain, agent.Subject).Verified);
        var refused = identity.Endorsed(intent, credential!, "globex.example/prod", agent.Subject);
        Assert.Equal(GovernanceReason.CredentialInvalid, refused.Refusal!.Reason);
    }
}
