using System.Text;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class EndorsementTests
{
    private const string Digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    private readonly TestDomain _origin = new("acme.example/prod");
    private readonly TestDomain _target = new("globex.example/prod");
    private readonly TestDomain _stranger = new("initech.example/prod");
    private readonly TrustConfig _targetTrust;

    public EndorsementTests()
    {
        // The target pins the origin's root and accepted its key set; the stranger is not pinned.
        _targetTrust = new TrustConfig([_target.Root.VerifierKey, _origin.Root.VerifierKey], _target.KeySet);
        Assert.True(_targetTrust.AcceptKeySet(_origin.SignedKeySet, TestDomain.Now).IsValid);
    }

    private EndorsementClaims Claims(string? federationDigest = "sha256:feed") => new(
        _origin.Name, _origin.Name + "/agents/deployer", _target.Name, TestDomain.Intent().IntentId, Digest, 3, "sha256:e9", federationDigest, 17,
        TestDomain.Now, TestDomain.Now.AddSeconds(60));

    private string Issue(EndorsementClaims? claims = null, ISigner? key = null) =>
        Endorsements.Issue(claims ?? Claims(), key ?? _origin.Signers[KeyUsage.Grant]);

    private EndorsementVerificationOptions Options(DateTimeOffset? now = null, string audience = "globex.example/prod", string digest = Digest) => new()
    {
        Audience = audience,
        KeyResolver = _targetTrust,
        Now = now ?? TestDomain.Now.AddSeconds(1),
        Skew = TimeSpan.FromSeconds(30),
        IntentDigest = digest,
    };

    private static string PayloadOf(string jws) => Encoding.UTF8.GetString(Base64Url.Decode(jws.Split('.')[1]));

    [Fact]
    public void An_endorsement_verifies_at_the_target_and_returns_its_claims()
    {
        var result = Endorsements.Verify(Issue(), Options());

        Assert.True(result.IsValid, result.Detail);
        Assert.Equal(Claims(), result.Value);
    }

    [Fact]
    public void An_endorsement_without_a_federation_policy_has_no_federation_claim()
    {
        var token = Issue(Claims(federationDigest: null));

        Assert.DoesNotContain("federation_digest", PayloadOf(token), StringComparison.Ordinal);
        var result = Endorsements.Verify(token, Options());
        Assert.True(result.IsValid, result.Detail);
        Assert.Null(result.Value!.FederationDigest);
    }

    [Fact]
    public void Signing_the_same_claims_twice_gives_the_same_bytes()
    {
        Assert.Equal(Issue(), Issue());
    }

    [Fact]
    public void Only_a_grant_key_issues_endorsements()
    {
        Assert.Throws<ArgumentException>(() => Issue(key: _origin.Signers[KeyUsage.Credential]));
    }

    [Fact]
    public void An_endorsement_signed_by_another_key_of_the_origin_is_rejected()
    {
        // The credential key is in the origin's key set, but not for this usage.
        var forged = GrantTests.Forge(
            $$"""{"alg":"EdDSA","kid":"{{_origin.Signers[KeyUsage.Credential].KeyId}}","typ":"{{Endorsements.Type}}"}""",
            PayloadOf(Issue()),
            _origin.Signers[KeyUsage.Credential]);

        var result = Endorsements.Verify(forged, Options());

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
    }

    [Fact]
    public void An_endorsement_naming_the_origin_but_signed_by_another_domains_grant_key_is_rejected()
    {
        var result = Endorsements.Verify(Issue(key: _target.Signers[KeyUsage.Grant]), Options());

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
    }

    [Fact]
    public void An_endorsement_from_a_domain_that_is_not_pinned_is_rejected()
    {
        var result = Endorsements.Verify(Issue(Claims() with { Issuer = _stranger.Name }, _stranger.Signers[KeyUsage.Grant]), Options());

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.UnknownDomain, result.Reason);
    }

    [Fact]
    public void A_tampered_endorsement_is_rejected()
    {
        var parts = Issue().Split('.');
        var payload = JsonNode.Parse(PayloadOf(Issue()))!.AsObject();
        payload["egress_epoch"] = 4;
        var tampered = parts[0] + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(payload.ToJsonString())) + "." + parts[2];

        var result = Endorsements.Verify(tampered, Options());

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
    }

    [Fact]
    public void A_grant_is_not_accepted_as_an_endorsement()
    {
        var agent = TestDomain.AgentKey();
        var grant = Grants.Issue(_origin.Grant(agent.Public) with { Audience = _target.Name }, _origin.Signers[KeyUsage.Grant]);

        var result = Endorsements.Verify(grant, Options());

        Assert.False(result.IsValid);
        Assert.Contains("typ", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_endorsement_is_not_accepted_as_a_grant()
    {
        var agent = TestDomain.AgentKey();
        var result = Grants.Verify(Issue(), new GrantVerificationOptions
        {
            Audience = _target.Name,
            AgentPublicKey = agent.Public,
            KeyResolver = _targetTrust,
            Now = TestDomain.Now,
        });

        Assert.False(result.IsValid);
        Assert.Contains("typ", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_endorsement_for_another_audience_is_rejected()
    {
        var result = Endorsements.Verify(Issue(), Options(audience: _stranger.Name));

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
        Assert.Contains("audience", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_endorsement_of_another_intent_digest_is_rejected()
    {
        var result = Endorsements.Verify(Issue(), Options(digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222"));

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
        Assert.Contains("digest", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_endorsement_is_accepted_until_its_expiry_plus_skew_and_refused_after()
    {
        var exp = Claims().ExpiresAt;

        Assert.True(Endorsements.Verify(Issue(), Options(now: exp.AddSeconds(29))).IsValid);
        var late = Endorsements.Verify(Issue(), Options(now: exp.AddSeconds(30)));
        Assert.False(late.IsValid);
        Assert.Equal(GovernanceReason.SyncStale, late.Reason);
    }

    [Fact]
    public void An_endorsement_issued_in_the_future_is_rejected()
    {
        var result = Endorsements.Verify(Issue(), Options(now: TestDomain.Now.AddSeconds(-31)));

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.MalformedInput, result.Reason);
    }

    [Theory]
    [InlineData("lineage_index")]
    [InlineData("intent_digest")]
    [InlineData("egress_epoch")]
    [InlineData("exp")]
    public void An_endorsement_missing_a_claim_is_rejected(string claim)
    {
        var payload = JsonNode.Parse(PayloadOf(Issue()))!.AsObject();
        payload.Remove(claim);
        var token = GrantTests.Forge(
            $$"""{"alg":"EdDSA","kid":"{{_origin.Signers[KeyUsage.Grant].KeyId}}","typ":"{{Endorsements.Type}}"}""",
            payload.ToJsonString(),
            _origin.Signers[KeyUsage.Grant]);

        var result = Endorsements.VerifySignature(token, _targetTrust, TestDomain.Now);

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.MalformedInput, result.Reason);
        Assert.Contains(claim, result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_forged_token_with_the_right_header_verifies_so_the_rejection_tests_test_one_thing()
    {
        var token = GrantTests.Forge(
            $$"""{"alg":"EdDSA","kid":"{{_origin.Signers[KeyUsage.Grant].KeyId}}","typ":"{{Endorsements.Type}}"}""",
            PayloadOf(Issue()),
            _origin.Signers[KeyUsage.Grant]);

        Assert.True(Endorsements.Verify(token, Options()).IsValid);
    }

    [Fact]
    public void A_garbage_endorsement_is_rejected_not_crashed_on()
    {
        foreach (var token in new[] { "", "a.b", "a.b.c", "eyJ9.eyJ9.AAAA", new string('x', 20_000) })
        {
            Assert.False(Endorsements.VerifySignature(token, _targetTrust, TestDomain.Now).IsValid);
        }
    }
}
