using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class GrantTests
{
    private readonly TestDomain _domain = new();
    private readonly (byte[] Private, byte[] Public) _agent = TestDomain.AgentKey();

    private GrantVerificationOptions Options(DateTimeOffset? now = null) => new()
    {
        Audience = _domain.Name,
        AgentPublicKey = _agent.Public,
        KeyResolver = _domain.Trust,
        Now = now ?? TestDomain.Now.AddMinutes(1),
        Skew = TimeSpan.FromSeconds(30),
        IntentDigest = "sha256:00",
    };

    private string Issue() => Grants.Issue(_domain.Grant(_agent.Public), _domain.Signers[KeyUsage.Grant]);

    /// <summary>Signs the exact header and payload text given, so one property at a time can be wrong.</summary>
    internal static string Forge(string headerJson, string payloadJson, ISigner signer)
    {
        var input = Base64Url.Encode(Encoding.UTF8.GetBytes(headerJson)) + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(payloadJson));
        return input + "." + Base64Url.Encode(signer.Sign(Encoding.ASCII.GetBytes(input)));
    }

    private static string PayloadOf(string jws) => Encoding.UTF8.GetString(Base64Url.Decode(jws.Split('.')[1]));

    private string Header(string typ = Grants.Type, string alg = "EdDSA", string extra = "") =>
        $$"""{"alg":"{{alg}}","kid":"{{_domain.Signers[KeyUsage.Grant].KeyId}}","typ":"{{typ}}"{{extra}}}""";

    [Fact]
    public void A_grant_verifies_and_returns_its_claims()
    {
        var result = Grants.Verify(Issue(), Options());
        Assert.True(result.IsValid, result.Detail);
        var expected = _domain.Grant(_agent.Public);
        Assert.Equal(expected, result.Value! with { Policies = expected.Policies });
        Assert.Equal(7, result.Value!.Policies.Single().Epoch);
        Assert.Equal(42, result.Value.LineageIndex);
    }

    [Fact]
    public void Signing_the_same_claims_twice_gives_the_same_bytes()
    {
        Assert.Equal(Issue(), Issue());
    }

    [Fact]
    public void Forged_token_with_a_correct_header_verifies_so_the_rejection_tests_test_one_thing()
    {
        var token = Forge(Header(), PayloadOf(Issue()), _domain.Signers[KeyUsage.Grant]);
        Assert.True(Grants.Verify(token, Options()).IsValid);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("HS256")]
    [InlineData("ES256")]
    [InlineData("eddsa")]
    public void A_grant_with_another_alg_is_rejected(string alg)
    {
        var token = Forge(Header(alg: alg), PayloadOf(Issue()), _domain.Signers[KeyUsage.Grant]);
        var result = Grants.Verify(token, Options());
        Assert.False(result.IsValid);
        Assert.Contains("alg", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_alg_none_token_with_an_empty_signature_is_rejected()
    {
        var parts = Issue().Split('.');
        var header = Base64Url.Encode("""{"alg":"none","typ":"meshbus-grant+jwt"}"""u8);
        Assert.False(Grants.Verify(header + "." + parts[1] + ".", Options()).IsValid);
    }

    [Fact]
    public void An_hmac_token_keyed_with_the_public_key_is_rejected()
    {
        // Algorithm confusion: an attacker MACs with the (public) verification key as the HMAC secret.
        var signingInput = Base64Url.Encode(Encoding.UTF8.GetBytes(Header(alg: "HS256"))) + "." + Issue().Split('.')[1];
        var mac = HMACSHA256.HashData(_domain.Signers[KeyUsage.Grant].PublicKey, Encoding.ASCII.GetBytes(signingInput));
        var result = Grants.Verify(signingInput + "." + Base64Url.Encode(mac), Options());
        Assert.False(result.IsValid);
    }

    [Fact]
    public void A_credential_presented_as_a_grant_is_rejected()
    {
        var token = Forge(Header(typ: Credentials.Type), PayloadOf(Issue()), _domain.Signers[KeyUsage.Grant]);
        var result = Grants.Verify(token, Options());
        Assert.False(result.IsValid);
        Assert.Contains("typ", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_real_credential_is_not_accepted_as_a_grant()
    {
        var credential = Credentials.Issue(_domain.Credential(_agent.Public), _domain.Signers[KeyUsage.Credential]);
        Assert.False(Grants.Verify(credential, Options()).IsValid);
    }

    [Theory]
    [InlineData(""","crit":["exp"]""")]
    [InlineData(",\"jku\":\"https://evil.example/jwks\"")]
    [InlineData(""","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}""")]
    [InlineData(",\"x5u\":\"https://evil.example/cert\"")]
    [InlineData(""","x5c":["MIIB"]""")]
    public void A_grant_with_a_key_selecting_or_critical_header_is_rejected(string extra)
    {
        var token = Forge(Header(extra: extra), PayloadOf(Issue()), _domain.Signers[KeyUsage.Grant]);
        var result = Grants.Verify(token, Options());
        Assert.False(result.IsValid);
        Assert.Contains("not accepted", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_duplicate_member_in_the_header_is_rejected()
    {
        var header = Header().TrimEnd('}') + ""","typ":"meshbus-grant+jwt"}""";
        var result = Grants.Verify(Forge(header, PayloadOf(Issue()), _domain.Signers[KeyUsage.Grant]), Options());
        Assert.False(result.IsValid);
        Assert.Contains("duplicate", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_duplicate_member_in_the_payload_is_rejected()
    {
        // The second "aud" would win in many parsers; the signature is valid, the meaning is ambiguous.
        var payload = PayloadOf(Issue()).TrimEnd('}') + ""","aud":"other.example/prod"}""";
        var result = Grants.Verify(Forge(Header(), payload, _domain.Signers[KeyUsage.Grant]), Options());
        Assert.False(result.IsValid);
        Assert.Contains("duplicate", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_signed_by_an_unknown_kid_is_rejected()
    {
        var stranger = Ed25519Signer.Generate(KeyUsage.Grant);
        var result = Grants.Verify(Grants.Issue(_domain.Grant(_agent.Public), stranger), Options());
        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
        Assert.Contains("unknown key id", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_whose_kid_names_a_known_key_but_is_signed_by_another_is_rejected()
    {
        var stranger = new Ed25519Signer(_domain.Signers[KeyUsage.Grant].KeyId, KeyUsage.Grant, Ed25519Keys.NewPrivateKey());
        var result = Grants.Verify(Grants.Issue(_domain.Grant(_agent.Public), stranger), Options());
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
        Assert.Contains("does not verify", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_signed_by_a_revoked_kid_is_rejected()
    {
        var revoked = _domain.KeySet with { Sequence = 2, Revoked = [_domain.Signers[KeyUsage.Grant].KeyId] };
        var trust = new TrustConfig([_domain.Root.VerifierKey], revoked);
        var result = Grants.Verify(Issue(), Options() with { KeyResolver = trust });
        Assert.Equal(GovernanceReason.KeyRevoked, result.Reason);
    }

    [Fact]
    public void A_grant_signed_with_a_key_of_another_usage_is_rejected()
    {
        var credentialKey = _domain.Signers[KeyUsage.Credential];
        var token = Forge($$"""{"alg":"EdDSA","kid":"{{credentialKey.KeyId}}","typ":"meshbus-grant+jwt"}""", PayloadOf(Issue()), credentialKey);
        var result = Grants.Verify(token, Options());
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
        Assert.Contains("not a grant key", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_from_a_domain_outside_the_trust_config_is_rejected()
    {
        var other = new TestDomain("evil.example/prod");
        var result = Grants.Verify(Grants.Issue(other.Grant(_agent.Public), other.Signers[KeyUsage.Grant]), Options() with { Audience = other.Name });
        Assert.Equal(GovernanceReason.UnknownDomain, result.Reason);
    }

    [Fact]
    public void A_grant_a_pinned_peer_minted_for_this_domain_is_rejected()
    {
        // The peer is trusted for its own grants (its key resolves), never for grants at this domain's resources.
        var peer = new TestDomain("globex.example/prod");
        var trust = new TrustConfig([_domain.Root.VerifierKey, peer.Root.VerifierKey], _domain.KeySet);
        Assert.True(trust.AcceptKeySet(peer.SignedKeySet, TestDomain.Now).IsValid);
        var minted = Grants.Issue(peer.Grant(_agent.Public) with { Audience = _domain.Name }, peer.Signers[KeyUsage.Grant]);

        var result = Grants.Verify(minted, Options() with { KeyResolver = trust });

        Assert.False(result.IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
        Assert.Contains("not by the resource's domain", result.Detail, StringComparison.Ordinal);
        Assert.True(Grants.Verify(Issue(), Options() with { KeyResolver = trust }).IsValid);
    }

    [Fact]
    public void A_grant_for_another_audience_is_rejected()
    {
        // Issued by this domain (iss matches) but for another domain's resources.
        var token = Grants.Issue(_domain.Grant(_agent.Public) with { Audience = "other.example/prod" }, _domain.Signers[KeyUsage.Grant]);
        var result = Grants.Verify(token, Options());
        Assert.False(result.IsValid);
        Assert.Contains("audience", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_presented_by_another_agent_key_is_rejected()
    {
        var result = Grants.Verify(Issue(), Options() with { AgentPublicKey = TestDomain.AgentKey().Public });
        Assert.False(result.IsValid);
        Assert.Contains("cnf", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_for_another_intent_digest_is_rejected()
    {
        var result = Grants.Verify(Issue(), Options() with { IntentDigest = "sha256:01" });
        Assert.False(result.IsValid);
        Assert.Contains("digest", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_is_accepted_within_skew_after_expiry_and_rejected_beyond()
    {
        var exp = TestDomain.Now.AddMinutes(5);
        Assert.True(Grants.Verify(Issue(), Options(exp.AddSeconds(29))).IsValid);
        var late = Grants.Verify(Issue(), Options(exp.AddSeconds(30)));
        Assert.Equal(GovernanceReason.LeaseExpired, late.Reason);
    }

    [Fact]
    public void A_grant_that_is_not_yet_valid_is_rejected()
    {
        var claims = _domain.Grant(_agent.Public) with { NotBefore = TestDomain.Now.AddMinutes(3) };
        var token = Grants.Issue(claims, _domain.Signers[KeyUsage.Grant]);
        Assert.True(Grants.Verify(token, Options(TestDomain.Now.AddMinutes(3).AddSeconds(-30))).IsValid);
        var early = Grants.Verify(token, Options(TestDomain.Now.AddMinutes(3).AddSeconds(-31)));
        Assert.Equal(GovernanceReason.LeaseExpired, early.Reason);
        Assert.Contains("not valid before", early.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_grant_relying_on_an_older_policy_epoch_than_seen_is_rejected()
    {
        var ok = Options() with { MinPolicyEpochs = [new PolicyVersion(_domain.Name, PolicyScope.Domain, 7, "")] };
        Assert.True(Grants.Verify(Issue(), ok).IsValid);
        var rollback = Options() with { MinPolicyEpochs = [new PolicyVersion(_domain.Name, PolicyScope.Domain, 8, "")] };
        Assert.Equal(GovernanceReason.PolicyRevoked, Grants.Verify(Issue(), rollback).Reason);
    }

    [Fact]
    public void A_tampered_payload_is_rejected()
    {
        var parts = Issue().Split('.');
        var payload = JsonNode.Parse(Base64Url.Decode(parts[1]))!.AsObject();
        payload["resource"] = "k8s://cluster-a/ns/db";
        var tampered = parts[0] + "." + Base64Url.Encode(Canonical.Json(JsonSerializer.SerializeToElement(payload))) + "." + parts[2];
        Assert.Equal(GovernanceReason.SignatureInvalid, Grants.Verify(tampered, Options()).Reason);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a.b")]
    [InlineData("a.b.c.d")]
    [InlineData("eyJhbGciOiJFZERTQSJ9.e30=.AA")]
    [InlineData("!!.!!.!!")]
    public void Malformed_tokens_are_rejected_without_throwing(string token)
    {
        Assert.False(Grants.Verify(token, Options()).IsValid);
    }

    [Fact]
    public void A_grant_is_only_signed_with_a_grant_key()
    {
        Assert.Throws<ArgumentException>(() => Grants.Issue(_domain.Grant(_agent.Public), _domain.Signers[KeyUsage.Credential]));
    }

    [Fact]
    public void The_policy_floor_is_kept_per_signed_issuer_and_covers_federation_epochs()
    {
        var floor = new PolicyFloor();
        var claims = _domain.Grant(_agent.Public) with
        {
            Policies = [new PolicyVersion(_domain.Name, PolicyScope.Domain, 7, "sha256:aa"), new PolicyVersion("acme-globex", PolicyScope.Federation, 3, "sha256:ff")],
        };
        floor.Raise(claims);

        Assert.True(floor.Check(claims).IsValid);
        var federationRollback = claims with { Policies = [claims.Policies[0], claims.Policies[1] with { Epoch = 2 }] };
        Assert.Equal(GovernanceReason.PolicyRevoked, floor.Check(federationRollback).Reason);
        var federationDropped = claims with { Policies = [claims.Policies[0]] };
        Assert.Equal(GovernanceReason.PolicyRevoked, floor.Check(federationDropped).Reason);

        // Another issuer's grants are measured against that issuer's floor only.
        var otherIssuer = claims with { Issuer = "globex.example/prod", Policies = [new PolicyVersion(_domain.Name, PolicyScope.Domain, 1, "sha256:aa")] };
        Assert.True(floor.Check(otherIssuer).IsValid);
        floor.Raise(otherIssuer with { Policies = [new PolicyVersion(_domain.Name, PolicyScope.Domain, 9_000_000_000_000_000, "sha256:aa")] });
        Assert.True(floor.Check(claims).IsValid);
    }
}
