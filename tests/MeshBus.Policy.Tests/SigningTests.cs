using MeshBus.Policy.Bundles;
using MeshBus.Trust;
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

    private static readonly string FederationBundle = TestBundles.Edit(TestBundles.Simple, o =>
    {
        o["scope"] = "federation";
        o["domain"] = "acme-globex";
    });

    [Fact]
    public void Roots_cosign_a_federation_bundle_and_every_root_is_required()
    {
        var acme = RootKey.Generate("acme.example/prod");
        var globex = RootKey.Generate("globex.example/prod");
        var one = PolicyBundleSigning.SignAsRoot(FederationBundle, acme);
        var both = PolicyBundleSigning.SignAsRoot(one, globex);

        var bundle = PolicyBundle.Parse(both);
        Assert.Equal(
            [RootKey.PolicyKeyId(acme.VerifierKey), RootKey.PolicyKeyId(globex.VerifierKey)],
            bundle.Signatures.Select(s => s.KeyId));
        Assert.Empty(PolicyBundleSigning.Verify(bundle, PolicySigners.EveryRoot([acme.VerifierKey, globex.VerifierKey])));
        var missing = Assert.Single(PolicyBundleSigning.Verify(PolicyBundle.Parse(one), PolicySigners.EveryRoot([acme.VerifierKey, globex.VerifierKey])));
        Assert.Contains(RootKey.PolicyKeyId(globex.VerifierKey), missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_root_signing_again_replaces_its_signature_and_keeps_the_cosignature()
    {
        var acme = RootKey.Generate("acme.example/prod");
        var globex = RootKey.Generate("globex.example/prod");
        var once = PolicyBundleSigning.SignAsRoot(PolicyBundleSigning.SignAsRoot(FederationBundle, acme), globex);
        var twice = PolicyBundleSigning.SignAsRoot(once, acme);

        var bundle = PolicyBundle.Parse(twice);
        Assert.Equal(2, bundle.Signatures.Count);
        Assert.Single(bundle.Signatures, s => s.KeyId == RootKey.PolicyKeyId(acme.VerifierKey));
        Assert.Empty(PolicyBundleSigning.Verify(bundle, PolicySigners.EveryRoot([acme.VerifierKey, globex.VerifierKey])));
    }

    [Fact]
    public void A_changed_federation_bundle_drops_the_roots_signatures_over_the_old_digest()
    {
        var acme = RootKey.Generate("acme.example/prod");
        var globex = RootKey.Generate("globex.example/prod");
        var signed = PolicyBundleSigning.SignAsRoot(PolicyBundleSigning.SignAsRoot(FederationBundle, acme), globex);
        var changed = TestBundles.Edit(signed, o => o["epoch"] = 8);
        var resigned = PolicyBundle.Parse(PolicyBundleSigning.SignAsRoot(changed, globex));

        Assert.Equal([RootKey.PolicyKeyId(globex.VerifierKey)], resigned.Signatures.Select(s => s.KeyId));
        var missing = Assert.Single(PolicyBundleSigning.Verify(resigned, PolicySigners.EveryRoot([acme.VerifierKey, globex.VerifierKey])));
        Assert.Contains(RootKey.PolicyKeyId(acme.VerifierKey), missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Another_root_with_the_same_domain_name_does_not_stand_in_for_the_pinned_one()
    {
        var pinned = RootKey.Generate("acme.example/prod");
        var impostor = RootKey.Generate("acme.example/prod");
        var bundle = PolicyBundle.Parse(PolicyBundleSigning.SignAsRoot(FederationBundle, impostor));
        Assert.NotEmpty(PolicyBundleSigning.Verify(bundle, PolicySigners.EveryRoot([pinned.VerifierKey])));

        // Even under the pinned root's key id, the impostor's signature does not verify.
        var forged = TestBundles.Edit(PolicyBundleSigning.SignAsRoot(FederationBundle, impostor),
            o => o["signatures"]![0]!["keyId"] = RootKey.PolicyKeyId(pinned.VerifierKey));
        Assert.Contains(PolicyBundleSigning.Verify(PolicyBundle.Parse(forged), PolicySigners.EveryRoot([pinned.VerifierKey])),
            e => e.Message.Contains("does not verify", StringComparison.Ordinal));
    }

    [Fact]
    public void A_root_policy_signature_is_the_one_a_domain_key_would_make_over_the_same_message()
    {
        // One message definition for both signers: SignAsRoot verifies as an ordinary digest signature with the root's public key.
        var acme = RootKey.Generate("acme.example/prod");
        var bundle = PolicyBundle.Parse(PolicyBundleSigning.SignAsRoot(FederationBundle, acme));
        Assert.True(Ed25519Keys.Verify(acme.PublicKey, PolicyBundleSigning.SignedMessage(bundle.Digest), Base64Url.Decode(bundle.Signatures[0].Signature)));
    }
}
