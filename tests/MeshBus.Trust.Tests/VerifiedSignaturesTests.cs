using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class VerifiedSignaturesTests
{
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(30);
    private readonly TestDomain _domain = new();
    private readonly (byte[] Private, byte[] Public) _agent = TestDomain.AgentKey();

    private string Issue() => Credentials.Issue(_domain.Credential(_agent.Public), _domain.Signers[KeyUsage.Credential]);

    [Fact]
    public void A_remembered_signature_answers_only_for_the_same_key_message_and_signature()
    {
        var memo = new VerifiedSignatures();
        var message = "hello"u8.ToArray();
        var signature = Ed25519Keys.Sign(_agent.Private, message);
        var other = TestDomain.AgentKey();

        Assert.True(memo.Verify(_agent.Public, message, signature));
        Assert.Equal(1, memo.Count);
        Assert.True(memo.Verify(_agent.Public, message, signature));

        var tampered = (byte[])signature.Clone();
        tampered[5] ^= 1;
        Assert.False(memo.Verify(_agent.Public, message, tampered));
        Assert.False(memo.Verify(other.Public, message, signature));
        Assert.False(memo.Verify(_agent.Public, "hellp"u8, signature));
        Assert.Equal(1, memo.Count);
    }

    [Fact]
    public void A_signature_that_failed_is_not_remembered_and_the_memo_stays_bounded()
    {
        var memo = new VerifiedSignatures(capacity: 2);
        Assert.False(memo.Verify(_agent.Public, "m"u8, new byte[64]));
        Assert.Equal(0, memo.Count);

        for (var i = 0; i < 5; i++)
        {
            var message = new[] { (byte)i };
            Assert.True(memo.Verify(_agent.Public, message, Ed25519Keys.Sign(_agent.Private, message)));
            Assert.InRange(memo.Count, 1, 2);
        }
    }

    [Fact]
    public void A_remembered_credential_still_fails_once_its_key_is_revoked_or_it_expired()
    {
        var memo = new VerifiedSignatures();
        var credential = Issue();
        Assert.True(Credentials.Verify(credential, _domain.Trust, TestDomain.Now, Skew, memo).IsValid);
        Assert.Equal(1, memo.Count);

        var revoked = new TrustConfig([], _domain.KeySet with { Revoked = [_domain.Signers[KeyUsage.Credential].KeyId] });
        Assert.Equal(GovernanceReason.KeyRevoked, Credentials.Verify(credential, revoked, TestDomain.Now, Skew, memo).Reason);
        Assert.Equal(GovernanceReason.CredentialExpired, Credentials.Verify(credential, _domain.Trust, TestDomain.Now.AddHours(2), Skew, memo).Reason);
        Assert.True(Credentials.Verify(credential, _domain.Trust, TestDomain.Now, Skew, memo).IsValid);
    }
}
