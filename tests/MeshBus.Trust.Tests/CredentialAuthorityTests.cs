using MeshBus.Contracts;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.Time.Testing;

namespace MeshBus.Trust.Tests;

public sealed class CredentialAuthorityTests
{
    private readonly TestDomain _domain = new();
    private readonly AttesterKey _attester = AttesterKey.Generate("attester.acme.example/k8s");
    private readonly FakeTimeProvider _time = new(TestDomain.Now);
    private readonly (byte[] Private, byte[] Public) _agent = TestDomain.AgentKey();
    private readonly CredentialAuthority _authority;

    public CredentialAuthorityTests()
    {
        var verifier = new SignedStatementAttestationVerifier([_attester.VerifierKey], TimeSpan.FromSeconds(30));
        _authority = new CredentialAuthority(_domain.Name, _ => _domain.Signers[KeyUsage.Credential], verifier, _time);
    }

    private string AgentSubject => _domain.Name + "/agents/deployer";

    private AttestationStatement Statement(TimeSpan? life = null) =>
        new(_attester.Name, AgentSubject, Base64Url.Encode(_agent.Public), "sha256:feed", "k8s", "team-web", ["deployers"], TestDomain.Now, TestDomain.Now + (life ?? TimeSpan.FromHours(2)));

    private IssueCredential Request(string? attestation = null, long? ttl = null) =>
        new(Guid.NewGuid(), _domain.Name, AgentSubject, Base64Url.Encode(_agent.Public), attestation ?? _attester.Attest(Statement()), ttl);

    [Fact]
    public void A_valid_attestation_yields_a_credential_bound_to_the_agent_key()
    {
        var result = _authority.Issue(Request());
        Assert.True(result.IsValid, result.Detail);
        var verified = Credentials.Verify(result.Value!.Credential, _domain.Trust, TestDomain.Now, TimeSpan.Zero);
        Assert.True(verified.IsValid, verified.Detail);
        Assert.Equal(Base64Url.Encode(_agent.Public), verified.Value!.AgentKey);
        Assert.Equal("sha256:feed", verified.Value.Attributes.ImageDigest);
        Assert.Equal(TestDomain.Now.AddMinutes(15), result.Value.ExpiresAt);
    }

    [Fact]
    public void The_lifetime_is_capped_by_policy_and_by_the_attestation()
    {
        Assert.Equal(TestDomain.Now.AddHours(1), _authority.Issue(Request(ttl: 86400)).Value!.ExpiresAt);
        var shortAttestation = _attester.Attest(Statement(TimeSpan.FromMinutes(5)));
        Assert.Equal(TestDomain.Now.AddMinutes(5), _authority.Issue(Request(shortAttestation, 3600)).Value!.ExpiresAt);
    }

    [Fact]
    public void An_attestation_from_an_unregistered_attester_is_refused()
    {
        var rogue = new AttesterKey(_attester.Name, Ed25519Keys.NewPrivateKey());
        var result = _authority.Issue(Request(rogue.Attest(Statement())));
        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);

        var unknown = AttesterKey.Generate("someone.else/attester");
        Assert.Contains("not registered", _authority.Issue(Request(unknown.Attest(Statement() with { Attester = unknown.Name }))).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_attestation_for_another_agent_key_is_refused()
    {
        var other = Statement() with { AgentKey = Base64Url.Encode(TestDomain.AgentKey().Public) };
        Assert.Contains("another public key", _authority.Issue(Request(_attester.Attest(other))).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_attestation_for_another_agent_is_refused()
    {
        var other = Statement() with { Agent = _domain.Name + "/agents/admin" };
        Assert.Contains("names agent", _authority.Issue(Request(_attester.Attest(other))).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_expired_attestation_is_refused()
    {
        var attestation = _attester.Attest(Statement(TimeSpan.FromMinutes(5)));
        _time.Advance(TimeSpan.FromMinutes(6));
        Assert.Contains("expired", _authority.Issue(Request(attestation)).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_request_for_another_domain_or_an_agent_outside_it_is_refused()
    {
        Assert.Equal(GovernanceReason.UnknownDomain, _authority.Issue(Request() with { Domain = "other.example/prod" }).Reason);
        Assert.Equal(GovernanceReason.UnknownDomain, _authority.Issue(Request() with { Agent = "other.example/prod/agents/x" }).Reason);
    }

    [Fact]
    public void A_malformed_public_key_or_attestation_is_refused()
    {
        Assert.Equal(GovernanceReason.MalformedInput, _authority.Issue(Request() with { AgentPublicKey = "abc" }).Reason);
        Assert.False(_authority.Issue(Request("not-a-jws")).IsValid);
    }
}
