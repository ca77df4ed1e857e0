using MeshBus.Cli;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

public sealed class CliCommandTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-cli-" + Guid.NewGuid().ToString("N"));

    public CliCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader("")));
        return (code, output.ToString(), error.ToString());
    }

    private async Task<string> Ok(params string[] args)
    {
        var (code, output, error) = await Run(args);
        Assert.True(code == 0, $"meshbus {string.Join(' ', args)} exited {code}: {error}");
        return output.Trim();
    }

    [Fact]
    public async Task The_demo_flow_creates_domains_pins_peers_and_issues_a_verifiable_credential()
    {
        var acme = P("acme");
        var partner = P("partner");
        var acmeRoot = await Ok("keys", "init", "--domain", "acme.example/prod", "--out", acme);
        Assert.Equal("acme.example/prod", VerifierKey.Parse(acmeRoot).Name);
        var partnerRoot = await Ok("keys", "init", "--domain", "partner.example/prod", "--out", partner);

        // Exchange: partner exports, acme pins the root and imports the key set.
        var exported = (await Ok("trust", "export", "--domain-dir", partner, "--format", "jwks", "--out", P("export"))).Split('\n');
        Assert.Equal(3, exported.Length);
        Assert.Equal(partnerRoot, await Ok("trust", "export", "--domain-dir", partner, "--format", "vkey"));
        await Ok("trust", "add", "--domain-dir", acme, "--peer", "partner.example/prod", "--root", partnerRoot, "--keyset", P("export/partner.example_prod.keyset.json"));
        var partnerKeys = DomainKeys.Load(partner);
        var trust = DomainKeys.Load(acme).LoadTrust();
        Assert.True(trust.Resolve("partner.example/prod", partnerKeys.KeySet.Current(KeyUsage.Grant, DateTimeOffset.UtcNow)!.KeyId, KeyUsage.Grant, DateTimeOffset.UtcNow).Found);

        // An agent gets a credential from an attested statement.
        var publicKey = await Ok("agent", "keygen", "--out", P("agent.key"));
        await Ok("agent", "attester-init", "--domain-dir", acme, "--name", "attester.acme.example/ci", "--out", P("attester.key"));
        await Ok("agent", "attest", "--attester-key", P("attester.key"), "--agent", "acme.example/prod/agents/deployer", "--public-key", publicKey,
            "--image-digest", "sha256:beef", "--group", "deployers", "--out", P("attestation.jws"));
        var credential = await Ok("agent", "issue", "--domain-dir", acme, "--agent", "acme.example/prod/agents/deployer", "--public-key", publicKey, "--attestation", P("attestation.jws"), "--ttl", "600");
        var verified = Credentials.Verify(credential, DomainKeys.Load(acme).LoadTrust(), DateTimeOffset.UtcNow, TimeSpan.FromSeconds(5));
        Assert.True(verified.IsValid, verified.Detail);
        Assert.Equal(publicKey, verified.Value!.AgentKey);
        Assert.Equal(AgentKey.Load(P("agent.key")).PublicKeyText, publicKey);
        Assert.Equal(["deployers"], verified.Value.Attributes.Groups);
    }

    [Fact]
    public async Task Rotate_and_revoke_publish_new_key_sets()
    {
        var dir = P("d");
        await Ok("keys", "init", "--domain", "acme.example/prod", "--out", dir);
        var before = DomainKeys.Load(dir).KeySet;
        await Ok("keys", "rotate", "--domain-dir", dir, "--usage", "grant");
        var rotated = DomainKeys.Load(dir).KeySet;
        Assert.Equal(2, rotated.Sequence);
        Assert.Equal(before.Keys.Count + 1, rotated.Keys.Count);

        var kid = rotated.Current(KeyUsage.Envelope, DateTimeOffset.UtcNow)!.KeyId;
        var output = await Ok("keys", "revoke", "--domain-dir", dir, "--kid", kid);
        Assert.Contains("revoked", output, StringComparison.Ordinal);
        Assert.Contains(kid, DomainKeys.Load(dir).KeySet.Revoked);
    }

    [Fact]
    public async Task A_worldreadable_key_is_refused_with_a_clear_error_and_exit_2()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // unix file modes only
        }

        var dir = P("d");
        await Ok("keys", "init", "--domain", "acme.example/prod", "--out", dir);
        File.SetUnixFileMode(Path.Combine(dir, "root.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var (code, _, error) = await Run("keys", "rotate", "--domain-dir", dir);
        Assert.Equal(2, code);
        Assert.Contains("accessible by group or others", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_attestation_exits_1()
    {
        var dir = P("d");
        await Ok("keys", "init", "--domain", "acme.example/prod", "--out", dir);
        var publicKey = await Ok("agent", "keygen", "--out", P("agent.key"));
        // An attester that is not registered with the domain.
        var rogue = AttesterKey.Generate("rogue/attester");
        rogue.Save(P("rogue.key"));
        await Ok("agent", "attest", "--attester-key", P("rogue.key"), "--agent", "acme.example/prod/agents/x", "--public-key", publicKey, "--image-digest", "sha256:1", "--out", P("a.jws"));
        var (code, _, error) = await Run("agent", "issue", "--domain-dir", dir, "--agent", "acme.example/prod/agents/x", "--public-key", publicKey, "--attestation", P("a.jws"));
        Assert.Equal(1, code);
        Assert.Contains("not registered", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pinning_a_root_under_another_name_is_an_error()
    {
        var dir = P("d");
        var root = await Ok("keys", "init", "--domain", "acme.example/prod", "--out", dir);
        var (code, _, error) = await Run("trust", "add", "--domain-dir", dir, "--peer", "partner.example/prod", "--root", root);
        Assert.Equal(2, code);
        Assert.Contains("not 'partner.example/prod'", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("keys", "init", "--domain", "x")]
    [InlineData("keys", "rotate", "--domain-dir", "/nonexistent", "--usage", "bogus")]
    [InlineData("trust", "export", "--domain-dir", "/nonexistent", "--format", "pem")]
    [InlineData("keys", "init", "--domain", "x", "--out", "/tmp/x", "--typo", "1")]
    public async Task Usage_errors_exit_2(params string[] args)
    {
        Assert.Equal(2, (await Run(args)).Code);
    }

    [Fact]
    public async Task A_missing_domain_directory_is_a_clear_error()
    {
        var (code, _, error) = await Run("trust", "export", "--domain-dir", P("none"), "--format", "vkey");
        Assert.Equal(2, code);
        Assert.Contains("not a domain directory", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exported_jwks_keys_verify_a_grant_with_plain_jose_steps()
    {
        var dir = P("d");
        await Ok("keys", "init", "--domain", "acme.example/prod", "--out", dir);
        var jwks = System.Text.Json.Nodes.JsonNode.Parse(await Ok("trust", "export", "--domain-dir", dir, "--format", "jwks"))!;
        var keys = DomainKeys.Load(dir, KeyUsage.Grant);
        var agent = TestDomain.AgentKey();
        var now = DateTimeOffset.UtcNow;
        var claims = new TestDomain().Grant(agent.Public) with { Issuer = keys.Domain, Audience = keys.Domain, IssuedAt = now, NotBefore = now, ExpiresAt = now.AddMinutes(5) };
        var token = Grants.Issue(claims, keys.Signer(KeyUsage.Grant, now));

        // What any JOSE library does: pick the JWK by kid, check alg, verify Ed25519 over "header.payload".
        var parts = token.Split('.');
        var header = System.Text.Json.Nodes.JsonNode.Parse(Base64Url.Decode(parts[0]))!;
        var jwk = jwks["keys"]!.AsArray().Single(k => (string)k!["kid"]! == (string)header["kid"]!)!;
        Assert.Equal("EdDSA", (string)jwk["alg"]!);
        Assert.True(Ed25519Keys.Verify(Base64Url.Decode((string)jwk["x"]!), System.Text.Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64Url.Decode(parts[2])));
    }
}
