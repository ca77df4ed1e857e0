using System.Text;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class RootPolicySignatureTests
{
    private const string Digest = "sha256:38c168118a3fc18b9cb5f63a485cedb673124caa3f1df4959ff9b70743147005";

    private readonly RootKey _root = RootKey.Generate("acme.example/prod");

    [Fact]
    public void A_policy_digest_signature_verifies_over_the_prefix_and_digest_with_the_root_public_key()
    {
        var sig = _root.SignPolicyDigest(Digest);
        Assert.True(Ed25519Keys.Verify(_root.PublicKey, Encoding.UTF8.GetBytes("meshbus-policy/v1\n" + Digest), sig));
        Assert.True(Ed25519Keys.Verify(_root.VerifierKey.PublicKey, Encoding.UTF8.GetBytes(RootKey.PolicyDigestPrefix + Digest), sig));
    }

    [Fact]
    public void A_policy_digest_signature_means_nothing_else()
    {
        var sig = _root.SignPolicyDigest(Digest);
        Assert.False(Ed25519Keys.Verify(_root.PublicKey, Encoding.UTF8.GetBytes(Digest), sig));
        Assert.False(Ed25519Keys.Verify(_root.PublicKey, Encoding.UTF8.GetBytes(KeySet.SignaturePrefix + Digest), sig));
        Assert.False(Ed25519Keys.Verify(RootKey.Generate("acme.example/prod").PublicKey, Encoding.UTF8.GetBytes(RootKey.PolicyDigestPrefix + Digest), sig));
    }

    [Theory]
    [InlineData("")]
    [InlineData("sha256:")]
    [InlineData("38c168118a3fc18b9cb5f63a485cedb673124caa3f1df4959ff9b70743147005")]
    [InlineData("sha256:38C168118A3FC18B9CB5F63A485CEDB673124CAA3F1DF4959FF9B70743147005")]
    [InlineData("sha256:38c168118a3fc18b9cb5f63a485cedb673124caa3f1df4959ff9b7074314700")]
    [InlineData("sha256:38c168118a3fc18b9cb5f63a485cedb673124caa3f1df4959ff9b707431470050")]
    [InlineData("sha512:38c168118a3fc18b9cb5f63a485cedb673124caa3f1df4959ff9b70743147005")]
    [InlineData("sha256:38c168118a3fc18b9cb5f63a485cedb673124caa3f1df4959ff9b7074314700g")]
    [InlineData("sha256:38c168118a3fc18b9cb5f63a485cedb673124caa3f1df4959ff9b70743147005\n")]
    public void A_malformed_digest_is_refused(string digest)
    {
        var e = Assert.Throws<ArgumentException>(() => _root.SignPolicyDigest(digest));
        Assert.Equal("digest", e.ParamName);
    }

    [Fact]
    public void A_null_digest_is_refused() =>
        Assert.Throws<ArgumentNullException>(() => _root.SignPolicyDigest(null!));

    [Fact]
    public void The_policy_key_id_is_the_domain_and_the_hex_key_id_of_the_pinned_verifier_key()
    {
        var id = RootKey.PolicyKeyId(_root.VerifierKey);
        Assert.Equal("acme.example/prod+" + _root.VerifierKey.KeyIdHex, id);
        Assert.StartsWith(id + "+", _root.VerifierKey.ToString(), StringComparison.Ordinal);
        Assert.NotEqual(id, RootKey.PolicyKeyId(RootKey.Generate("acme.example/prod").VerifierKey));
    }
}
