using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Agent;

/// <summary>The resource-side <see cref="GrantVerifier"/>: issuer binding, the per-issuer rollback floor, and no exception on any input.</summary>
public sealed class GrantVerifierTests
{
    private const string Acme = "acme.example/prod";
    private const string Globex = "globex.example/prod";
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
    private readonly KeyDomain _acme = new(Acme);
    private readonly KeyDomain _globex = new(Globex);
    private readonly byte[] _agentPrivate = Ed25519Keys.NewPrivateKey();
    private readonly byte[] _challenge = Guid.NewGuid().ToByteArray();
    private readonly TrustConfig _trust;
    private readonly GrantVerifier _resource;

    public GrantVerifierTests()
    {
        // The resource pins both domains: globex's grant key resolves, so only the issuer binding keeps it out.
        _trust = new TrustConfig([_acme.Root.VerifierKey, _globex.Root.VerifierKey], _acme.KeySet);
        Assert.True(_trust.AcceptKeySet(_globex.SignedKeySet, Now).IsValid);
        _resource = new GrantVerifier(Acme, _trust, new FakeTimeProvider(Now));
    }

    private string Proof => Base64Url.Encode(Ed25519Keys.Sign(_agentPrivate, GrantVerifier.ProofInput(_challenge)));

    private GrantClaims Claims(string issuer = Acme, long epoch = 7, params PolicyVersion[] more) =>
        new(issuer, Acme + "/agents/deployer", Acme, "g-" + Guid.NewGuid().ToString("N")[..8], Guid.NewGuid(), "sha256:00", "deploy", "k8s://a/web",
            [new PolicyVersion(Acme, PolicyScope.Domain, epoch, "sha256:aa"), .. more], 3, Base64Url.Encode(Ed25519Keys.PublicKeyOf(_agentPrivate)), Now, Now, Now.AddMinutes(5));

    private VerificationResult<GrantClaims> Present(GrantClaims claims, KeyDomain? signer = null, string action = "deploy") =>
        _resource.Verify(Grants.Issue(claims, (signer ?? _acme).Grant), _challenge, Proof, action, "k8s://a/web");

    [Fact]
    public void A_grant_of_the_resources_domain_is_accepted()
    {
        var result = Present(Claims());
        Assert.True(result.IsValid, result.Detail);
    }

    [Fact]
    public void A_grant_a_pinned_peer_minted_for_this_domains_resources_is_refused()
    {
        var result = Present(Claims(issuer: Globex), _globex);

        Assert.False(result.IsValid);
        Assert.Contains("not by the resource's domain", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_peer_grant_with_a_huge_epoch_does_not_poison_the_floor_for_genuine_grants()
    {
        Assert.False(Present(Claims(issuer: Globex, epoch: 9_000_000_000_000_000), _globex).IsValid);

        var genuine = Present(Claims());

        Assert.True(genuine.IsValid, genuine.Detail);
    }

    [Fact]
    public void A_grant_relying_on_an_older_policy_epoch_than_one_already_accepted_is_refused()
    {
        Assert.True(Present(Claims(epoch: 7)).IsValid);

        var rollback = Present(Claims(epoch: 6));

        Assert.False(rollback.IsValid);
        Assert.Equal(GovernanceReason.PolicyRevoked, rollback.Reason);
    }

    [Fact]
    public void A_grant_relying_on_an_older_federation_epoch_than_one_already_accepted_is_refused()
    {
        Assert.True(Present(Claims(Acme, 7, new PolicyVersion("acme-globex", PolicyScope.Federation, 3, "sha256:ff"))).IsValid);

        var rollback = Present(Claims(Acme, 7, new PolicyVersion("acme-globex", PolicyScope.Federation, 2, "sha256:ee")));

        Assert.Equal(GovernanceReason.PolicyRevoked, rollback.Reason);
    }

    [Fact]
    public void A_refused_grant_does_not_raise_the_floor()
    {
        Assert.False(Present(Claims(epoch: 9), action: "delete").IsValid);

        var genuine = Present(Claims(epoch: 7));

        Assert.True(genuine.IsValid, genuine.Detail);
    }

    public static TheoryData<string, string> MalformedPayloads => new()
    {
        { "cnf is a string", """{"iss":"acme.example/prod","cnf":"x"}""" },
        { "x is a number", """{"iss":"acme.example/prod","cnf":{"jwk":{"kty":"OKP","crv":"Ed25519","x":42}}}""" },
        { "jwk is an array", """{"iss":"acme.example/prod","cnf":{"jwk":[1]}}""" },
        { "no cnf", """{"iss":"acme.example/prod"}""" },
        { "payload is an array", """[1,2]""" },
        { "payload is a string", "\"grant\"" },
        { "iss is a number", """{"iss":5,"cnf":{"jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}""" },
    };

    [Theory]
    [MemberData(nameof(MalformedPayloads))]
    public void A_malformed_grant_is_refused_with_a_reason_not_an_exception(string what, string payload)
    {
        var header = $$"""{"alg":"EdDSA","kid":"{{_acme.Grant.KeyId}}","typ":"{{Grants.Type}}"}""";
        var input = Base64Url.Encode(System.Text.Encoding.UTF8.GetBytes(header)) + "." + Base64Url.Encode(System.Text.Encoding.UTF8.GetBytes(payload));
        var token = input + "." + Base64Url.Encode(_acme.Grant.Sign(System.Text.Encoding.ASCII.GetBytes(input)));

        var result = _resource.Verify(token, _challenge, Proof, "deploy", "k8s://a/web");

        Assert.False(result.IsValid, what);
        Assert.NotEqual(GovernanceReason.None, result.Reason);
    }

    [Theory]
    [InlineData(null, "p")]
    [InlineData("", "p")]
    [InlineData("a.b.c", "p")]
    [InlineData("x", null)]
    [InlineData("x", "!!")]
    public void Missing_or_garbage_arguments_are_refused_with_a_reason_not_an_exception(string? grant, string? proof)
    {
        var token = grant == "x" ? Grants.Issue(Claims(), _acme.Grant) : grant;

        var result = _resource.Verify(token!, _challenge, proof!, "deploy", "k8s://a/web");

        Assert.False(result.IsValid);
    }

    /// <summary>A domain's root, grant key and signed key set, in memory.</summary>
    private sealed class KeyDomain
    {
        public KeyDomain(string name)
        {
            Root = RootKey.Generate(name);
            Grant = Ed25519Signer.Generate(KeyUsage.Grant);
            KeySet = new KeySet(name, 1, Now.AddDays(-1), Now.AddDays(30), [new KeySetEntry(Grant.KeyId, KeyUsage.Grant, Base64Url.Encode(Grant.PublicKey), Now.AddDays(-1), Now.AddDays(30))], []);
            SignedKeySet = KeySet.Sign(Root);
        }

        public RootKey Root { get; }

        public Ed25519Signer Grant { get; }

        public KeySet KeySet { get; }

        public string SignedKeySet { get; }
    }
}
