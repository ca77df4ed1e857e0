using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class PolicySignCommandTests : IDisposable
{
    private const string Acme = "acme.example/prod";
    private const string Globex = "globex.example/prod";

    private static readonly string Federation = TestBundles.Edit(TestBundles.Simple, o =>
    {
        o["scope"] = "federation";
        o["domain"] = "acme-globex";
    });

    private readonly string _dir = Directory.CreateTempSubdirectory("meshbus-policy-sign-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<string> KeysInit(string domain)
    {
        var dir = Path.Combine(_dir, domain.Replace('/', '_'));
        var (code, output, err) = await TestCli.Run("keys", "init", "--domain", domain, "--out", dir);
        Assert.True(code == 0, output + err);
        return dir;
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    // What the Sync and Authorize workers do: the grant keys of the domain's key set.
    private static PolicySigners DomainKeySet(string domainDir)
    {
        var keys = DomainKeys.Load(domainDir);
        return PolicySigners.DomainGrantKeys(keys.KeySet, keys.Domain, DateTimeOffset.UtcNow);
    }

    private static VerifierKey RootOf(string domainDir) => DomainKeys.Load(domainDir).Root;

    [Fact]
    public async Task A_domain_bundle_signed_with_the_grant_key_loads_with_the_domains_key_set()
    {
        var acme = await KeysInit(Acme);
        var file = Write("p.policy.json", TestBundles.Simple);
        var signedFile = Path.Combine(_dir, "signed.json");
        var (code, output, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--out", signedFile);
        Assert.True(code == 0, err);
        Assert.Empty(output);

        var json = File.ReadAllText(signedFile);
        var bundle = PolicyBundle.Parse(json);
        var grantKey = DomainKeys.Load(acme, KeyUsage.Grant).Signer(KeyUsage.Grant, DateTimeOffset.UtcNow).KeyId;
        Assert.Equal([grantKey], bundle.Signatures.Select(s => s.KeyId));
        Assert.Equal($"signed the domain policy of {Acme}, epoch 7, {bundle.Digest}, with {grantKey}: 1 signature\n", err.ReplaceLineEndings("\n"));
        Assert.Equal(PolicyLoadOutcome.Loaded, new PolicyStore().Load(json, DomainKeySet(acme), PolicyScope.Domain, Acme).Outcome);
        Assert.Equal(TestBundles.Simple, File.ReadAllText(file)); // without --out = FILE the input is left alone
    }

    [Fact]
    public async Task An_egress_bundle_read_from_standard_input_is_signed_to_standard_output()
    {
        var acme = await KeysInit(Acme);
        var egress = TestBundles.Edit(TestBundles.Simple, o => o["scope"] = "egress");
        var (code, output, err) = await TestCli.RunWithInput(egress, "policy", "sign", "-", "--domain-dir", acme);
        Assert.True(code == 0, err);
        Assert.Contains($"signed the egress policy of {Acme}, epoch 7", err, StringComparison.Ordinal);
        Assert.Equal(PolicyLoadOutcome.Loaded, new PolicyStore().Load(output, DomainKeySet(acme), PolicyScope.Egress, Acme).Outcome);
    }

    [Fact]
    public async Task Signing_in_place_replaces_the_file_and_an_edited_bundle_gets_a_new_digest_and_only_the_new_signature()
    {
        var acme = await KeysInit(Acme);
        var file = Write("p.policy.json", TestBundles.Simple);
        Assert.Equal(0, (await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--out", file)).Code);
        var first = PolicyBundle.Parse(File.ReadAllText(file));
        Assert.Single(first.Signatures);

        // The operator edits the signed file (its digest is now stale) and signs it again: the digest is recomputed.
        File.WriteAllText(file, TestBundles.Edit(File.ReadAllText(file), o => o["epoch"] = 8));
        var (code, _, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--out", file);
        Assert.True(code == 0, err);
        Assert.Contains("1 over the previous digest dropped", err, StringComparison.Ordinal);
        var second = PolicyBundle.Parse(File.ReadAllText(file));
        Assert.Equal(8, second.Epoch);
        Assert.NotEqual(first.Digest, second.Digest);
        Assert.Single(second.Signatures);
        var store = new PolicyStore();
        Assert.Equal(PolicyLoadOutcome.Loaded, store.Load(File.ReadAllText(file), DomainKeySet(acme)).Outcome);
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }

    [Fact]
    public async Task A_federation_bundle_signed_by_both_roots_in_turn_loads_only_with_both()
    {
        var acme = await KeysInit(Acme);
        var globex = await KeysInit(Globex);
        var file = Write("f.policy.json", Federation);
        var half = Path.Combine(_dir, "half.json");
        var full = Path.Combine(_dir, "full.json");

        var (code1, _, err1) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--root", "--out", half);
        Assert.True(code1 == 0, err1);
        var (code2, _, err2) = await TestCli.Run("policy", "sign", half, "--root", "--domain-dir", globex, "--out", full);
        Assert.True(code2 == 0, err2);

        var acmeId = RootKey.PolicyKeyId(RootOf(acme));
        var globexId = RootKey.PolicyKeyId(RootOf(globex));
        Assert.StartsWith(Acme + "+", acmeId, StringComparison.Ordinal);
        Assert.Contains($"with {acmeId}: 1 signature", err1, StringComparison.Ordinal);
        Assert.Contains($"signed the federation policy of acme-globex, epoch 7, sha256:", err2, StringComparison.Ordinal);
        Assert.Contains($"with {globexId}: 2 signatures", err2, StringComparison.Ordinal);
        Assert.Equal([acmeId, globexId], PolicyBundle.Parse(File.ReadAllText(full)).Signatures.Select(s => s.KeyId));

        var both = PolicySigners.EveryRoot([RootOf(acme), RootOf(globex)]);
        var refused = Assert.Throws<PolicyBundleException>(() => new PolicyStore().Load(File.ReadAllText(half), both, PolicyScope.Federation));
        Assert.Contains(globexId, refused.Message, StringComparison.Ordinal);
        Assert.Equal(PolicyLoadOutcome.Loaded, new PolicyStore().Load(File.ReadAllText(full), both, PolicyScope.Federation).Outcome);
    }

    [Fact]
    public async Task A_federation_bundle_without_root_is_refused_with_exit_1()
    {
        var acme = await KeysInit(Acme);
        var file = Write("f.policy.json", Federation);
        var output = Path.Combine(_dir, "out.json");
        var (code, _, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--out", output);
        Assert.Equal(1, code);
        Assert.Contains("federation policy of acme-globex", err, StringComparison.Ordinal);
        Assert.Contains("sign it with --root", err, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [InlineData("domain")]
    [InlineData("egress")]
    public async Task Root_signing_a_domain_or_egress_bundle_is_refused_with_exit_1(string scope)
    {
        var acme = await KeysInit(Acme);
        var file = Write("p.policy.json", TestBundles.Edit(TestBundles.Simple, o => o["scope"] = scope));
        var (code, output, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--root");
        Assert.Equal(1, code);
        Assert.Empty(output);
        Assert.Contains("a root signs only federation bundles", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bundle_of_another_domain_is_refused_with_exit_1()
    {
        var globex = await KeysInit(Globex);
        var file = Write("p.policy.json", TestBundles.Simple);
        var (code, output, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", globex);
        Assert.Equal(1, code);
        Assert.Empty(output);
        Assert.Contains($"is the domain policy of {Acme} but", err, StringComparison.Ordinal);
        Assert.Contains($"holds the keys of {Globex}", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bundle_that_does_not_lint_is_refused_with_exit_1_listing_every_problem()
    {
        var acme = await KeysInit(Acme);
        var file = Write("bad.policy.json", TestBundles.Edit(TestBundles.Simple, o =>
        {
            o["rules"]![0]!["condition"] = "agent.subjekt == 'x'";
            o["rules"]![1]!["match"]!["resources"] = new System.Text.Json.Nodes.JsonArray("k8s://***");
        }));
        var output = Path.Combine(_dir, "out.json");
        var (code, _, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--out", output);
        Assert.Equal(1, code);
        Assert.Contains("rules[0].condition (rule 'allow-deploy')", err, StringComparison.Ordinal);
        Assert.Contains("rules[1].match.resources[0]", err, StringComparison.Ordinal);
        Assert.Contains("does not lint (2 problems); nothing signed", err, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task An_edited_bundle_that_no_longer_lints_is_refused_even_though_its_digest_is_only_stale()
    {
        var acme = await KeysInit(Acme);
        var file = Write("p.policy.json", TestBundles.Simple);
        Assert.Equal(0, (await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--out", file)).Code);
        var signed = File.ReadAllText(file);
        File.WriteAllText(file, TestBundles.Edit(signed, o => o["rules"]![0]!["condition"] = "agent.subjekt == 'x'"));
        var (code, _, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--out", file);
        Assert.Equal(1, code);
        Assert.Contains("rules[0].condition (rule 'allow-deploy')", err, StringComparison.Ordinal);
        Assert.Contains("agent.subjekt", File.ReadAllText(file), StringComparison.Ordinal); // left as it was
    }

    [Fact]
    public async Task An_unreadable_file_exits_2()
    {
        var acme = await KeysInit(Acme);
        var (code, output, err) = await TestCli.Run("policy", "sign", Path.Combine(_dir, "missing.json"), "--domain-dir", acme);
        Assert.Equal(2, code);
        Assert.Empty(output);
        Assert.Contains("cannot read", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_domain_dir_option_is_a_usage_error_and_a_missing_directory_exits_2()
    {
        var file = Write("p.policy.json", TestBundles.Simple);
        var (code, _, err) = await TestCli.Run("policy", "sign", file);
        Assert.Equal(2, code);
        Assert.Contains("missing required option --domain-dir", err, StringComparison.Ordinal);
        Assert.Contains("Usage: meshbus policy sign", err, StringComparison.Ordinal);

        var (code2, output2, err2) = await TestCli.Run("policy", "sign", file, "--domain-dir", Path.Combine(_dir, "nowhere"));
        Assert.Equal(2, code2);
        Assert.Empty(output2);
        Assert.Contains("is not a domain directory", err2, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err2, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_root_key_that_is_not_the_pinned_root_exits_2()
    {
        var acme = await KeysInit(Acme);
        var globex = await KeysInit(Globex);
        File.Copy(Path.Combine(globex, DomainKeys.RootKeyFile), Path.Combine(acme, DomainKeys.RootKeyFile), overwrite: true);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(acme, DomainKeys.RootKeyFile), KeyFiles.PrivateFileMode);
        }

        var file = Write("f.policy.json", Federation);
        var (code, output, err) = await TestCli.Run("policy", "sign", file, "--domain-dir", acme, "--root");
        Assert.Equal(2, code);
        Assert.Empty(output);
        Assert.Contains("does not match root.vkey", err, StringComparison.Ordinal);
    }
}
