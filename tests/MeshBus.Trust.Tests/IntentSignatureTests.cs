using System.Text.Json;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class IntentSignatureTests
{
    private readonly (byte[] Private, byte[] Public) _agent = TestDomain.AgentKey();

    [Fact]
    public void A_signed_intent_verifies_with_the_agent_key()
    {
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        Assert.True(IntentSignature.Verify(signed, _agent.Public));
    }

    [Fact]
    public void The_verified_digest_is_the_digest_of_a_verifying_intent_and_null_otherwise()
    {
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        Assert.Equal(IntentSignature.Digest(signed), IntentSignature.VerifiedDigest(signed, _agent.Public));
        Assert.Null(IntentSignature.VerifiedDigest(signed, TestDomain.AgentKey().Public));
        Assert.Null(IntentSignature.VerifiedDigest(signed with { Nonce = "other" }, _agent.Public));
        Assert.Null(IntentSignature.VerifiedDigest(signed with { Signature = "not base64url!" }, _agent.Public));
    }

    [Fact]
    public void An_intent_does_not_verify_with_another_key()
    {
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        Assert.False(IntentSignature.Verify(signed, TestDomain.AgentKey().Public));
    }

    [Fact]
    public void Changing_any_signed_field_breaks_the_signature()
    {
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        var changed = new[]
        {
            signed with { IntentId = Guid.NewGuid() },
            signed with { Domain = "x" },
            signed with { Agent = "x" },
            signed with { TargetDomain = "x" },
            signed with { Action = "x" },
            signed with { Resource = "x" },
            signed with { Parameters = JsonDocument.Parse("""{"replicas":4,"image":"web:1.2"}""").RootElement },
            signed with { Parameters = null },
            signed with { MaxDurationSeconds = 601 },
            signed with { Nonce = "x" },
            signed with { IssuedAt = signed.IssuedAt.AddMilliseconds(1) },
        };
        Assert.All(changed, c => Assert.False(IntentSignature.Verify(c, _agent.Public)));
    }

    [Fact]
    public void Credential_and_message_version_are_not_signed()
    {
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        Assert.True(IntentSignature.Verify(signed with { Credential = "other", MessageVersion = 2 }, _agent.Public));
        Assert.Equal(IntentSignature.Digest(signed), IntentSignature.Digest(signed with { Credential = "other" }));
    }

    [Fact]
    public void The_digest_is_sha256_of_the_documented_canonical_json()
    {
        var intent = TestDomain.Intent();
        const string expected = """{"action":"deploy","agent":"acme.example/prod/agents/deployer","domain":"acme.example/prod","intentId":"8b0a7c36-5d0e-4a55-9b39-0d8b7f3c2a11","issuedAt":1795694400000,"maxDurationSeconds":600,"nonce":"n-5f2c","parameters":{"image":"web:1.2","replicas":3},"resource":"k8s://cluster-a/ns/web","targetDomain":"acme.example/prod"}""";
        Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(IntentSignature.SignedBytes(intent)));
        Assert.Equal(Canonical.Sha256Digest(System.Text.Encoding.UTF8.GetBytes(expected)), IntentSignature.Digest(intent));
        Assert.Matches("^sha256:[0-9a-f]{64}$", IntentSignature.Digest(intent));
    }

    [Fact]
    public void Parameters_with_a_fraction_cannot_be_signed_or_verified()
    {
        var intent = TestDomain.Intent() with { Parameters = JsonDocument.Parse("""{"ratio":0.5}""").RootElement };
        Assert.Throws<StrictJsonException>(() => IntentSignature.Sign(intent, _agent.Private));
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        Assert.False(IntentSignature.Verify(signed with { Parameters = intent.Parameters }, _agent.Public));
    }

    [Fact]
    public void Sign_truncates_issued_at_to_milliseconds_and_verify_rejects_finer_times()
    {
        var intent = TestDomain.Intent() with { IssuedAt = TestDomain.Now.AddTicks(12345) };
        var signed = IntentSignature.Sign(intent, _agent.Private);
        Assert.Equal(TestDomain.Now.AddMilliseconds(1), signed.IssuedAt);
        Assert.True(IntentSignature.Verify(signed, _agent.Public));
        Assert.False(IntentSignature.Verify(signed with { IssuedAt = signed.IssuedAt.AddTicks(1) }, _agent.Public));
    }

    [Fact]
    public void A_malformed_signature_is_rejected_without_throwing()
    {
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        Assert.False(IntentSignature.Verify(signed with { Signature = "not base64url!" }, _agent.Public));
        Assert.False(IntentSignature.Verify(signed with { Signature = Base64Url.Encode(new byte[63]) }, _agent.Public));
    }

    [Theory]
    [InlineData("""{"replicas":3,"replicas":4}""")]
    [InlineData("""{"name":"\ud800"}""")]
    [InlineData("""{"big":9007199254740993}""")]
    [InlineData("""[1,2]""")]
    public void Parameters_outside_the_canonical_subset_never_verify(string parameters)
    {
        var signed = IntentSignature.Sign(TestDomain.Intent(), _agent.Private);
        var bad = signed with { Parameters = JsonDocument.Parse(parameters).RootElement.Clone() };
        Assert.False(IntentSignature.Verify(bad, _agent.Public));
        Assert.ThrowsAny<FormatException>(() => IntentSignature.Digest(bad));
    }
}
