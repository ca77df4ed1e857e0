using MeshBus.Contracts;

namespace MeshBus.Trust.Tests;

public sealed class TrustConfigTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-trust-" + Guid.NewGuid().ToString("N"));
    private readonly TestDomain _peer = new("partner.example/prod");

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private TrustConfig Config() => new([_peer.Root.VerifierKey], new TestDomain().KeySet);

    [Fact]
    public void A_peer_key_set_signed_by_its_pinned_root_is_accepted_and_resolves()
    {
        var config = Config();
        Assert.True(config.AcceptKeySet(_peer.SignedKeySet, TestDomain.Now).IsValid);
        var kid = _peer.Signers[KeyUsage.Grant].KeyId;
        Assert.True(config.Resolve(_peer.Name, kid, KeyUsage.Grant, TestDomain.Now).Found);
    }

    [Fact]
    public void A_peer_key_set_signed_by_another_root_is_refused()
    {
        var impostor = new KeySet(_peer.Name, 5, TestDomain.Now, TestDomain.Now.AddDays(1), _peer.KeySet.Keys, []).Sign(RootKey.Generate(_peer.Name));
        var result = Config().AcceptKeySet(impostor, TestDomain.Now);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
    }

    [Fact]
    public void A_key_set_of_a_domain_that_is_not_pinned_is_refused()
    {
        var stranger = new TestDomain("stranger.example/prod");
        Assert.Equal(GovernanceReason.UnknownDomain, Config().AcceptKeySet(stranger.SignedKeySet, TestDomain.Now).Reason);
        Assert.Equal(GovernanceReason.UnknownDomain, Config().Resolve(stranger.Name, "grant-x", KeyUsage.Grant, TestDomain.Now).Reason);
    }

    [Fact]
    public void Trust_is_not_transitive_a_peer_root_cannot_sign_a_key_set_for_a_third_domain()
    {
        // The partner's root signs a key set naming a third domain; even if that third domain were pinned with
        // another root, the partner's signature does not count for it.
        var third = new TestDomain("third.example/prod");
        var forged = new KeySet(third.Name, 1, TestDomain.Now, TestDomain.Now.AddDays(1), _peer.KeySet.Keys, []);
        var config = new TrustConfig([_peer.Root.VerifierKey, third.Root.VerifierKey]);
        var signedByPeer = SignWithRootOf(forged, _peer);
        Assert.Equal(GovernanceReason.SignatureInvalid, config.AcceptKeySet(signedByPeer, TestDomain.Now).Reason);
    }

    private static string SignWithRootOf(KeySet set, TestDomain signer)
    {
        // KeySet.Sign refuses a foreign root; build the signature by hand to model a malicious peer.
        var renamedRoot = new RootKey(set.Domain, ExportSeed(signer.Root));
        return set.Sign(renamedRoot);
    }

    private static byte[] ExportSeed(RootKey root) =>
        (byte[])typeof(RootKey).GetMethod("ExportPrivateKey", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.Invoke(root, null)!;

    [Fact]
    public void An_expired_peer_key_set_is_refused()
    {
        var result = Config().AcceptKeySet(_peer.SignedKeySet, _peer.KeySet.ExpiresAt.AddSeconds(1));
        Assert.Equal(GovernanceReason.SyncStale, result.Reason);
    }

    [Fact]
    public void A_peer_key_set_with_a_lower_sequence_than_accepted_is_refused()
    {
        var config = Config();
        var newer = (_peer.KeySet with { Sequence = 3 }).Sign(_peer.Root);
        Assert.True(config.AcceptKeySet(newer, TestDomain.Now).IsValid);
        Assert.Equal(GovernanceReason.ReplayDetected, config.AcceptKeySet(_peer.SignedKeySet, TestDomain.Now).Reason);
        Assert.True(config.AcceptKeySet(newer, TestDomain.Now).IsValid); // the same again is fine (at-least-once)
    }

    [Fact]
    public void A_different_key_set_with_the_accepted_sequence_is_refused()
    {
        var config = Config();
        Assert.True(config.AcceptKeySet(_peer.SignedKeySet, TestDomain.Now).IsValid);
        var other = (_peer.KeySet with { Revoked = ["grant-1"] }).Sign(_peer.Root);
        Assert.False(config.AcceptKeySet(other, TestDomain.Now).IsValid);
    }

    [Fact]
    public void A_pinned_peer_without_a_key_set_yet_is_stale_not_unknown()
    {
        Assert.Equal(GovernanceReason.SyncStale, Config().Resolve(_peer.Name, "grant-x", KeyUsage.Grant, TestDomain.Now).Reason);
    }

    [Fact]
    public void A_key_set_with_a_duplicate_member_is_refused()
    {
        var doctored = _peer.SignedKeySet.Replace("{\"domain\"", "{\"sequence\":99,\"domain\"", StringComparison.Ordinal);
        Assert.Equal(GovernanceReason.MalformedInput, Config().AcceptKeySet(doctored, TestDomain.Now).Reason);
    }

    [Fact]
    public void A_trust_directory_round_trips_export_pin_and_load()
    {
        var own = Path.Combine(_dir, "own");
        var peerDir = Path.Combine(_dir, "peer");
        DomainAdministration.Initialize(own, "acme.example/prod", TestDomain.Now);
        var peer = DomainAdministration.Initialize(peerDir, "partner.example/prod", TestDomain.Now);
        var export = Path.Combine(_dir, "export");
        var files = TrustFiles.Export(peer, export, jwks: true, TestDomain.Now);
        Assert.Equal(["partner.example_prod.vkey", "partner.example_prod.keyset.json", "partner.example_prod.jwks.json"], files.Select(Path.GetFileName));

        TrustFiles.Pin(own, peer.Domain, VerifierKey.Parse(File.ReadAllText(files[0])), replace: false);
        TrustFiles.StorePeerKeySet(own, File.ReadAllText(files[1]), TestDomain.Now);
        var trust = DomainKeys.Load(own).LoadTrust();
        var kid = peer.KeySet.Current(KeyUsage.Grant, TestDomain.Now)!.KeyId;
        Assert.True(trust.Resolve(peer.Domain, kid, KeyUsage.Grant, TestDomain.Now).Found);

        // The export directory alone is a trust directory an auditor can load.
        Assert.True(TrustConfig.LoadDirectory(export).Resolve(peer.Domain, kid, KeyUsage.Grant, TestDomain.Now).Found);
    }

    [Fact]
    public void Pinning_a_different_root_for_a_pinned_peer_needs_replace()
    {
        DomainAdministration.Initialize(_dir, "acme.example/prod", TestDomain.Now);
        TrustFiles.Pin(_dir, _peer.Name, _peer.Root.VerifierKey, replace: false);
        var other = RootKey.Generate(_peer.Name).VerifierKey;
        Assert.Throws<InvalidOperationException>(() => TrustFiles.Pin(_dir, _peer.Name, other, replace: false));
        TrustFiles.Pin(_dir, _peer.Name, other, replace: true);
        Assert.Throws<ArgumentException>(() => TrustFiles.Pin(_dir, "someone.else/prod", other, replace: false));
    }
}
