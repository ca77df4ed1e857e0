using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class KeyManagementTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-keys-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private DomainKeys Init() => DomainAdministration.Initialize(_dir, "acme.example/prod", TestDomain.Now);

    [Fact]
    public void Init_creates_a_root_and_a_key_set_with_every_usage()
    {
        var keys = Init();
        Assert.Equal("acme.example/prod", keys.Domain);
        Assert.Equal(1, keys.KeySet.Sequence);
        Assert.Equal(KeyUsages.All.Order(), keys.KeySet.Keys.Select(k => k.Usage).Order());
        Assert.Equal(keys.Root, VerifierKey.Parse(File.ReadAllText(Path.Combine(_dir, "root.vkey"))));
    }

    [Fact]
    public void Init_refuses_to_overwrite_a_domain()
    {
        Init();
        Assert.Throws<IOException>(() => Init());
    }

    [Fact]
    public void Key_files_are_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // unix file modes only
        }

        var keys = Init();
        Assert.Equal(KeyFiles.PrivateFileMode, File.GetUnixFileMode(Path.Combine(_dir, "root.key")));
        Assert.Equal(KeyFiles.PrivateDirectoryMode, File.GetUnixFileMode(Path.Combine(_dir, "keys")));
        Assert.Equal(KeyFiles.PrivateDirectoryMode, File.GetUnixFileMode(_dir));
        foreach (var k in keys.KeySet.Keys)
        {
            Assert.Equal(KeyFiles.PrivateFileMode, File.GetUnixFileMode(Path.Combine(_dir, "keys", k.KeyId + ".key")));
        }
    }

    [Theory]
    [InlineData(UnixFileMode.GroupRead)]
    [InlineData(UnixFileMode.OtherRead)]
    [InlineData(UnixFileMode.GroupWrite)]
    public void A_key_file_others_can_access_is_refused_with_a_clear_error(UnixFileMode extra)
    {
        if (OperatingSystem.IsWindows())
        {
            return; // unix file modes only
        }

        var keys = Init();
        var kid = keys.KeySet.Current(KeyUsage.Grant, TestDomain.Now)!.KeyId;
        var path = Path.Combine(_dir, "keys", kid + ".key");
        File.SetUnixFileMode(path, KeyFiles.PrivateFileMode | extra);
        var e = Assert.Throws<KeyFileException>(() => DomainKeys.Load(_dir, KeyUsage.Grant));
        Assert.Contains("chmod 600", e.Message, StringComparison.Ordinal);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_root_key_file_others_can_read_is_refused()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // unix file modes only
        }

        Init();
        File.SetUnixFileMode(Path.Combine(_dir, "root.key"), KeyFiles.PrivateFileMode | UnixFileMode.OtherRead);
        Assert.Throws<KeyFileException>(() => DomainAdministration.Rotate(_dir, TestDomain.Now, []));
    }

    [Fact]
    public void A_worker_loads_only_the_private_keys_of_its_usages()
    {
        Init();
        var keys = DomainKeys.Load(_dir, KeyUsage.Grant);
        Assert.Equal([KeyUsage.Grant], keys.Signers.Select(s => s.Usage).Distinct());
        Assert.Equal(KeyUsage.Grant, keys.Signer(KeyUsage.Grant, TestDomain.Now).Usage);
        Assert.Throws<InvalidOperationException>(() => keys.Signer(KeyUsage.Credential, TestDomain.Now));
    }

    [Fact]
    public void A_worker_does_not_even_read_key_files_of_other_usages()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // unix file modes only
        }

        var keys = Init();
        // A credential key file left readable by others does not stop a grant-only worker (it never opens it).
        var credentialKid = keys.KeySet.Current(KeyUsage.Credential, TestDomain.Now)!.KeyId;
        File.SetUnixFileMode(Path.Combine(_dir, "keys", credentialKid + ".key"), KeyFiles.PrivateFileMode | UnixFileMode.OtherRead);
        Assert.Single(DomainKeys.Load(_dir, KeyUsage.Grant).Signers);
    }

    [Fact]
    public void A_tampered_key_set_file_is_refused()
    {
        Init();
        var path = Path.Combine(_dir, "keyset.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"sequence\":1", "\"sequence\":9", StringComparison.Ordinal));
        var e = Assert.Throws<KeySetException>(() => DomainKeys.Load(_dir));
        Assert.Equal(GovernanceReason.SignatureInvalid, e.Reason);
    }

    [Fact]
    public void Rotation_makes_a_new_key_current_and_keeps_the_old_one_verifying_during_the_overlap()
    {
        var before = Init();
        var oldSigner = DomainKeys.Load(_dir, KeyUsage.Grant).Signer(KeyUsage.Grant, TestDomain.Now);
        var later = TestDomain.Now.AddHours(1);
        var next = DomainAdministration.Rotate(_dir, later, [KeyUsage.Grant]);
        Assert.Equal(2, next.Sequence);

        var after = DomainKeys.Load(_dir, KeyUsage.Grant);
        var newSigner = after.Signer(KeyUsage.Grant, later);
        Assert.NotEqual(oldSigner.KeyId, newSigner.KeyId);
        Assert.Single(after.Signers); // the old private key is deleted

        // Other usages are untouched.
        Assert.Equal(before.KeySet.Current(KeyUsage.Log, TestDomain.Now)!.KeyId, next.Current(KeyUsage.Log, later)!.KeyId);

        // The old key verifies until the overlap ends, then no more.
        Assert.True(next.Resolve(next.Domain, oldSigner.KeyId, KeyUsage.Grant, later.AddHours(23)).Found);
        Assert.False(next.Resolve(next.Domain, oldSigner.KeyId, KeyUsage.Grant, later.AddHours(25)).Found);
    }

    [Fact]
    public void Revocation_lists_the_key_deletes_it_and_replaces_a_current_key()
    {
        var keys = Init();
        var kid = keys.KeySet.Current(KeyUsage.Credential, TestDomain.Now)!.KeyId;
        var next = DomainAdministration.Revoke(_dir, kid, TestDomain.Now.AddMinutes(1));
        Assert.Contains(kid, next.Revoked);
        Assert.Equal(GovernanceReason.KeyRevoked, next.Resolve(next.Domain, kid, KeyUsage.Credential, TestDomain.Now).Reason);
        Assert.False(File.Exists(Path.Combine(_dir, "keys", kid + ".key")));
        var replacement = DomainKeys.Load(_dir, KeyUsage.Credential).Signer(KeyUsage.Credential, TestDomain.Now.AddMinutes(1));
        Assert.NotEqual(kid, replacement.KeyId);
    }

    [Fact]
    public void Revoking_an_unknown_key_is_an_error()
    {
        Init();
        Assert.Throws<ArgumentException>(() => DomainAdministration.Revoke(_dir, "grant-0000", TestDomain.Now));
    }

    [Fact]
    public void A_signer_issues_what_the_loaded_trust_verifies()
    {
        Init();
        var keys = DomainKeys.Load(_dir, KeyUsage.Grant);
        var agent = TestDomain.AgentKey();
        var claims = new TestDomain().Grant(agent.Public) with { Issuer = keys.Domain, Audience = keys.Domain };
        var token = Grants.Issue(claims, keys.Signer(KeyUsage.Grant, TestDomain.Now));
        var result = Grants.Verify(token, new GrantVerificationOptions { Audience = keys.Domain, AgentPublicKey = agent.Public, KeyResolver = keys.LoadTrust(), Now = TestDomain.Now });
        Assert.True(result.IsValid, result.Detail);
    }

    [Fact]
    public void Jwks_lists_unrevoked_keys_as_okp_ed25519_with_kid_use_and_alg()
    {
        var keys = Init();
        var revoked = keys.KeySet.Current(KeyUsage.Envelope, TestDomain.Now)!.KeyId;
        var set = DomainAdministration.Revoke(_dir, revoked, TestDomain.Now);
        var jwks = Jwks.FromKeySet(set, TestDomain.Now);
        var entries = jwks["keys"]!.AsArray();
        Assert.Equal(5, entries.Count);
        Assert.DoesNotContain(entries, e => (string)e!["kid"]! == revoked);
        foreach (var e in entries)
        {
            Assert.Equal("OKP", (string)e!["kty"]!);
            Assert.Equal("Ed25519", (string)e["crv"]!);
            Assert.Equal("sig", (string)e["use"]!);
            Assert.Equal("EdDSA", (string)e["alg"]!);
            Assert.Equal(32, Base64Url.Decode((string)e["x"]!).Length);
        }
    }
}
