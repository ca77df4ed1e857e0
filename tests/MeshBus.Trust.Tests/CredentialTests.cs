using System.Text;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class CredentialTests
{
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(30);
    private readonly TestDomain _domain = new();
    private readonly (byte[] Private, byte[] Public) _agent = TestDomain.AgentKey();

    private string Issue() => Credentials.Issue(_domain.Credential(_agent.Public), _domain.Signers[KeyUsage.Credential]);

    private string Header(string typ = Credentials.Type, string alg = "EdDSA", string extra = "") =>
        $$"""{"alg":"{{alg}}","kid":"{{_domain.Signers[KeyUsage.Credential].KeyId}}","typ":"{{typ}}"{{extra}}}""";

    private static string PayloadOf(string jws) => Encoding.UTF8.GetString(Base64Url.Decode(jws.Split('.')[1]));

    [Fact]
    public void A_credential_verifies_and_returns_its_claims()
    {
        var result = Credentials.Verify(Issue(), _domain.Trust, TestDomain.Now.AddMinutes(1), Skew);
        Assert.True(result.IsValid, result.Detail);
        var c = result.Value!;
        Assert.Equal(_domain.Name, c.Issuer);
        Assert.Equal(Base64Url.Encode(_agent.Public), c.AgentKey);
        Assert.Equal("sha256:abcd", c.Attributes.ImageDigest);
        Assert.Equal(["deployers"], c.Attributes.Groups);
        Assert.Equal(TestDomain.Now.AddMinutes(15), c.ExpiresAt);
    }

    [Fact]
    public void A_grant_presented_as_a_credential_is_rejected()
    {
        var token = GrantTests.Forge(Header(typ: Grants.Type), PayloadOf(Issue()), _domain.Signers[KeyUsage.Credential]);
        var result = Credentials.Verify(token, _domain.Trust, TestDomain.Now, Skew);
        Assert.Equal(GovernanceReason.CredentialInvalid, result.Reason);
        Assert.Contains("typ", result.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS256")]
    public void A_credential_with_another_alg_is_rejected(string alg)
    {
        var token = GrantTests.Forge(Header(alg: alg), PayloadOf(Issue()), _domain.Signers[KeyUsage.Credential]);
        Assert.False(Credentials.Verify(token, _domain.Trust, TestDomain.Now, Skew).IsValid);
    }

    [Fact]
    public void A_credential_with_a_jwk_header_is_rejected()
    {
        var token = GrantTests.Forge(Header(extra: ""","jwk":{"kty":"OKP"}"""), PayloadOf(Issue()), _domain.Signers[KeyUsage.Credential]);
        Assert.Contains("not accepted", Credentials.Verify(token, _domain.Trust, TestDomain.Now, Skew).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_credential_with_a_duplicate_subject_is_rejected()
    {
        var payload = PayloadOf(Issue()).TrimEnd('}') + ""","sub":"acme.example/prod/agents/admin"}""";
        var token = GrantTests.Forge(Header(), payload, _domain.Signers[KeyUsage.Credential]);
        Assert.Contains("duplicate", Credentials.Verify(token, _domain.Trust, TestDomain.Now, Skew).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_expired_credential_is_rejected_beyond_the_skew()
    {
        var exp = TestDomain.Now.AddMinutes(15);
        Assert.True(Credentials.Verify(Issue(), _domain.Trust, exp.AddSeconds(29), Skew).IsValid);
        Assert.Equal(GovernanceReason.CredentialExpired, Credentials.Verify(Issue(), _domain.Trust, exp.AddSeconds(30), Skew).Reason);
    }

    [Fact]
    public void A_credential_that_is_not_yet_valid_is_rejected()
    {
        var claims = _domain.Credential(_agent.Public) with { NotBefore = TestDomain.Now.AddMinutes(2) };
        var token = Credentials.Issue(claims, _domain.Signers[KeyUsage.Credential]);
        Assert.Equal(GovernanceReason.CredentialExpired, Credentials.Verify(token, _domain.Trust, TestDomain.Now, Skew).Reason);
    }

    [Fact]
    public void A_credential_signed_by_a_revoked_key_is_rejected()
    {
        var trust = new TrustConfig([], _domain.KeySet with { Revoked = [_domain.Signers[KeyUsage.Credential].KeyId] });
        Assert.Equal(GovernanceReason.KeyRevoked, Credentials.Verify(Issue(), trust, TestDomain.Now, Skew).Reason);
    }

    [Fact]
    public void A_credential_signed_by_an_unknown_key_is_rejected()
    {
        var token = Credentials.Issue(_domain.Credential(_agent.Public), Ed25519Signer.Generate(KeyUsage.Credential));
        Assert.Equal(GovernanceReason.SignatureInvalid, Credentials.Verify(token, _domain.Trust, TestDomain.Now, Skew).Reason);
    }

    [Fact]
    public void A_credential_claiming_another_issuer_does_not_verify_with_that_issuers_keys()
    {
        // A credential key of domain A cannot mint credentials for domain B: the key is looked up under iss.
        var other = new TestDomain("other.example/prod");
        var trust = new TrustConfig([other.Root.VerifierKey], _domain.KeySet);
        Assert.True(trust.AcceptKeySet(other.SignedKeySet, TestDomain.Now).IsValid);
        var claims = _domain.Credential(_agent.Public) with { Issuer = other.Name };
        var token = Credentials.Issue(claims, _domain.Signers[KeyUsage.Credential]);
        Assert.False(Credentials.Verify(token, trust, TestDomain.Now, Skew).IsValid);
    }
}
