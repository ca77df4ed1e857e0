using MeshBus.Cli;
using MeshBus.Policy;
using MeshBus.Policy.Evaluation;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Workers.Tests.Policy;

/// <summary>
/// The documented example policy against the claims of a credential made the way an operator makes one
/// (<c>meshbus agent keygen / attest / issue</c>) and read the way the Authorize worker reads it.
/// </summary>
public sealed class ExamplePolicyClaimsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-claims-" + Guid.NewGuid().ToString("N"));

    public ExamplePolicyClaimsTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static async Task<string> Ok(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader("")));
        Assert.True(code == 0, $"meshbus {string.Join(' ', args)} exited {code}: {error}");
        return output.ToString().Trim();
    }

    private static string Example(string name)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "docs", "examples", name);
            if (File.Exists(candidate))
            {
                return File.ReadAllText(candidate);
            }
        }

        throw new InvalidOperationException("docs/examples/" + name + " not found above " + AppContext.BaseDirectory);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_documented_example_policy_allows_a_deploy_by_an_agent_with_a_credential_from_meshbus_agent_issue()
    {
        var domainDir = P("acme");
        await Ok("keys", "init", "--domain", "acme.example/prod", "--out", domainDir);
        var publicKey = await Ok("agent", "keygen", "--out", P("agent.key"));
        await Ok("agent", "attester-init", "--domain-dir", domainDir, "--name", "attester.acme.example/ci", "--out", P("attester.key"));
        await Ok("agent", "attest", "--attester-key", P("attester.key"), "--agent", "acme.example/prod/agents/deployer", "--public-key", publicKey,
            "--image-digest", "sha256:beef", "--group", "deployers", "--out", P("attestation.jws"));
        var credential = await Ok("agent", "issue", "--domain-dir", domainDir, "--agent", "acme.example/prod/agents/deployer", "--public-key", publicKey,
            "--attestation", P("attestation.jws"), "--ttl", "600");

        var keys = DomainKeys.Load(domainDir);
        var verifier = new TrustIntentVerifier(new AuthorizeKeys(keys.LoadTrust(), new Ed25519Signer("unused", KeyUsage.Grant, Ed25519Keys.NewPrivateKey()), keys.KeySet.Sequence), Options.Create(new AuthorizeOptions()));
        var now = DateTimeOffset.UtcNow;
        var (verified, failure) = verifier.VerifyCredential(credential, now);
        Assert.True(verified is not null, failure?.ToString());

        // Every claim the worker hands to policies is one the schema declares.
        Assert.All(verified!.Claims.Keys, k => Assert.Contains(k, PolicyInputSchema.AgentClaims.Fields.Keys));

        var policy = CompiledPolicy.Compile(Example("acme-prod.policy.json"));
        var intent = new MeshBus.Contracts.IntentSubmitted(
            Guid.NewGuid(), "acme.example/prod", "acme.example/prod/agents/deployer", "acme.example/prod", "deploy", "k8s://acme-prod/web/frontend",
            null, 600, "n-1", now, credential, "");
        var decision = PolicyEngine.Decide(PolicyInput.For(intent, verified.Claims, now), policy);
        Assert.True(decision.Allowed, decision.Detail);
        Assert.Contains("allow-deploy-web", decision.MatchedRules);
    }

    [Fact]
    public void A_condition_naming_a_claim_credentials_do_not_carry_is_refused_when_the_bundle_loads()
    {
        var json = Example("acme-prod.policy.json").Replace("agent.claims.image_digest", "agent.claims.imageDigest", StringComparison.Ordinal);
        var e = Assert.ThrowsAny<Exception>(() => CompiledPolicy.Compile(json));
        Assert.Contains("imageDigest", e.Message, StringComparison.Ordinal);
    }
}
