using MeshBus.Policy.Bundles;
using MeshBus.Trust.Crypto;
using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class SigningTests
{
    private static readonly PolicySigners DomainSigner =
        PolicySigners.AnyKnownKey(id => id == "acme-policy-1" ? TestBundles.Pub(TestBundles.DomainKey) : null);

    [Fact]
    public void A_signed_bundle_verifies_against_the_domain_key()
    {
        var signed = PolicyBundleSigning.Sign(TestBundles.Simple, "acme-policy-1", TestBundles.DomainKey);
        var bundle = PolicyBundle.Parse(signed);
        Assert.Equal(bundle.Digest, bundle.DeclaredDigest);
        Assert.Empty(PolicyBundleSigning.Verify(bundle, DomainSigner));
    }

    [Fact]
    public void Signing_covers_the_digest_with_a_domain_separated_message()
    {
        var bundle = PolicyBundle.Parse(PolicyBundleSigning.Sign(TestBundles.Simple, "acme-policy-1", TestBundles.DomainKey));
        var sig = Base64Url.Decode(bundle.Signatures[0].Signature);
        Assert.True(Ed25519Keys.Verify(TestBundles.Pub(TestBundles.DomainKey), System.Text.Encoding.UTF8.GetBytes("meshbus-policy/v1\n" + bundle.Digest), sig));
    }

    [Fact]
    public void A_bundle_changed_after_signing_with_its_digest_recomputed_is_refused()
    {
        var signed = PolicyBundleSigning.Sign(TestBundles.Simple, "acme-policy-1", TestBundles.DomainKey);
        // The attacker flips a deny into an allow and drops the stale digest so that parsing passes.
        var tampered = TestBundles.Edit(signed, o =>
        {
            o["rules"]![1]!["effect"] = "allow";
            o.Remove("digest");
        });
        var errors = PolicyBundleSigning.Verify(PolicyBundle.Parse(tampered), DomainSigner);
        Assert.Contains(errors, e => e.Kind == PolicyBundleErrorKind.Signature && e.Message.Contains("does not verify", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unsigned_bundle_or_one_signed_by_an_unknown_key_is_refused()
    {
        Assert.Contains(PolicyBundleSigning.Verify(PolicyBundle.Parse(TestBundles.Simple), DomainSigner), e => e.Kind == PolicyBundleErrorKind.Signature);
        var byStranger = PolicyBundleSigning.Sign(TestBundles.Simple, "stranger", TestBundles.OtherKey);
        Assert.Contains(PolicyBundleSigning.Verify(PolicyBundle.Parse(byStranger), DomainSigner), e => e.Kind == PolicyBundleErrorKind.Signature);
    }

    [Fact]
    public void A_signature_under_a_known_key_id_by_another_key_is_refused()
    {
        var forged = PolicyBundleSigning.Sign(TestBundles.Simple, "acme-policy-1", TestBundles.OtherKey);
        Assert.NotEmpty(PolicyBundleSigning.Verify(PolicyBundle.Parse(forged), DomainSigner));
    }

    [Theory]
    [InlineData("not base64!")]
    [InlineData("AAAA")]
    public void A_malformed_signature_is_refused(string sig)
    {
        var signed = PolicyBundleSigning.Sign(TestBundles.Simple, "acme-policy-1", TestBundles.DomainKey);
        var broken = TestBundles.Edit(signed, o => o["signatures"]![0]!["sig"] = sig);
        Assert.NotEmpty(PolicyBundleSigning.Verify(PolicyBundle.Parse(broken), DomainSigner));
    }

    [Fact]
    public void A_federation_bundle_needs_a_signature_from_every_member_root()
    {
        var federation = TestBundles.Edit(TestBundles.Simple, o =>
        {
            o["scope"] = "federation";
            o["domain"] = "acme-globex";
        });
        var members = PolicySigners.EveryKey(new Dictionary<string, byte[]>
        {
            ["acme-root"] = TestBundles.Pub(TestBundles.DomainKey),
            ["globex-root"] = TestBundles.Pub(TestBundles.OtherKey),
            ["initech-root"] = TestBundles.Pub(TestBundles.ThirdKey),
        });
        var one = PolicyBundleSigning.Sign(federation, "acme-root", TestBundles.DomainKey);
        var two = PolicyBundleSigning.Sign(one, "globex-root", TestBundles.OtherKey);
        var missing = Assert.Single(PolicyBundleSigning.Verify(PolicyBundle.Parse(two), members));
        Assert.Contains("initech-root", missing.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("globex-root", missing.Message, StringComparison.Ordinal);

        var all = PolicyBundleSigning.Sign(two, "initech-root", TestBundles.ThirdKey);
        Assert.Equal(3, PolicyBundle.Parse(all).Signatures.Count);
        Assert.Empty(PolicyBundleSigning.Verify(PolicyBundle.Parse(all), members));
    }

    [Fact]
    public void Cosignatures_over_an_older_digest_are_dropped_when_the_content_changes()
    {
        var one = PolicyBundleSigning.Sign(TestBundles.Simple, "acme-root", TestBundles.DomainKey);
        var changed = TestBundles.Edit(one, o => o["epoch"] = 8);
        var two = PolicyBundleSigning.Sign(changed, "globex-root", TestBundles.OtherKey);
        Assert.Equal(["globex-root"], PolicyBundle.Parse(two).Signatures.Select(s => s.KeyId));
    }

    [Fact]
    public void The_same_key_signing_twice_is_refused()
    {
        var signed = PolicyBundleSigning.Sign(TestBundles.Simple, "acme-policy-1", TestBundles.DomainKey);
        var doubled = TestBundles.Edit(signed, o => o["signatures"]!.AsArray().Add(o["signatures"]![0]!.DeepClone()));
        Assert.Contains(PolicyBundleSigning.Verify(PolicyBundle.Parse(doubled), DomainSigner), e => e.Message.Contains("more than once", StringComparison.Ordinal));
    }
}
