using BenchmarkDotNet.Attributes;
using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;

namespace MeshBus.Benchmarks;

/// <summary>
/// Signatures: raw Ed25519 sign/verify of 256 bytes (the baseline), then what the mesh does per decision: intent
/// digest + signature check, grant issue, grant verify (JOSE checks, key resolution, claims), credential verify, and
/// an envelope seal/verify. Run: <c>dotnet run -c Release --project bench/MeshBus.Benchmarks -- --filter '*TrustBenchmarks*'</c>.
/// </summary>
[MemoryDiagnoser]
public class TrustBenchmarks
{
    private static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);
    private readonly byte[] _message = new byte[256];
    private byte[] _privateKey = [];
    private byte[] _publicKey = [];
    private byte[] _signature = [];
    private Ed25519Signer _grantKey = null!;
    private Ed25519Signer _credentialKey = null!;
    private Ed25519Signer _envelopeKey = null!;
    private TrustConfig _trust = null!;
    private AgentKey _agent = null!;
    private GrantClaims _claims = null!;
    private string _grant = "";
    private string _credential = "";
    private IntentSubmitted _intent = null!;
    private byte[] _envelope = [];
    private EnvelopeOptions _envelopeOptions = null!;
    private Envelope _plainEnvelope = null!;

    [GlobalSetup]
    public void Setup()
    {
        Random.Shared.NextBytes(_message);
        _privateKey = Ed25519Keys.NewPrivateKey();
        _publicKey = Ed25519Keys.PublicKeyOf(_privateKey);
        _signature = Ed25519Keys.Sign(_privateKey, _message);

        const string domain = "acme.example/prod";
        _grantKey = Ed25519Signer.Generate(KeyUsage.Grant);
        _credentialKey = Ed25519Signer.Generate(KeyUsage.Credential);
        _envelopeKey = Ed25519Signer.Generate(KeyUsage.Envelope);
        var entries = new[] { _grantKey, _credentialKey, _envelopeKey }
            .Select(s => new KeySetEntry(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), Now.AddDays(-1), Now.AddDays(90))).ToList();
        _trust = new TrustConfig([], new KeySet(domain, 1, Now, Now.AddDays(30), entries, []));
        _agent = AgentKey.Generate();

        _intent = IntentSignature.Sign(
            new IntentSubmitted(Guid.NewGuid(), domain, domain + "/agents/deployer", domain, "deploy", "k8s://cluster-a/ns/web",
                System.Text.Json.JsonDocument.Parse("""{"replicas":3,"image":"web:1.2","namespace":"web"}""").RootElement.Clone(), 600, "n-1", Now, "", ""),
            _agent.PrivateKey);
        _claims = new GrantClaims(domain, domain + "/agents/deployer", domain, "g-1", _intent.IntentId, IntentSignature.Digest(_intent), "deploy", "k8s://cluster-a/ns/web",
            [new PolicyVersion(domain, PolicyScope.Domain, 7, "sha256:" + new string('a', 64))], 42, _agent.PublicKeyText, Now, Now, Now.AddMinutes(5));
        _grant = Grants.Issue(_claims, _grantKey);
        _credential = Credentials.Issue(
            new CredentialClaims(domain, domain + "/agents/deployer", "c-1", _agent.PublicKeyText, new AgentAttributes("sha256:beef", "k8s", "web", ["deployers"]), Now, Now, Now.AddMinutes(15)),
            _credentialKey);

        _plainEnvelope = new Envelope(domain, domain, 1, Guid.NewGuid(), "IntentEndorsed", Now, Now.AddMinutes(1), new byte[512]);
        _envelope = Envelopes.Seal(_plainEnvelope, _envelopeKey).ToWire();
        _envelopeOptions = new EnvelopeOptions { LocalDomain = domain, TimeToLive = new Dictionary<string, TimeSpan> { ["IntentEndorsed"] = TimeSpan.FromMinutes(2) } };
    }

    [Benchmark(Baseline = true, Description = "Ed25519 sign 256 B")]
    public byte[] Sign() => Ed25519Keys.Sign(_privateKey, _message);

    [Benchmark(Description = "Ed25519 verify 256 B")]
    public bool Verify() => Ed25519Keys.Verify(_publicKey, _message, _signature);

    [Benchmark(Description = "intent digest (JCS + SHA-256)")]
    public string IntentDigest() => IntentSignature.Digest(_intent);

    [Benchmark(Description = "intent signature verify")]
    public bool IntentVerify() => IntentSignature.Verify(_intent, _agent.PublicKey);

    [Benchmark(Description = "grant issue")]
    public string GrantIssue() => Grants.Issue(_claims, _grantKey);

    [Benchmark(Description = "grant verify")]
    public bool GrantVerify() => Grants.Verify(_grant, new GrantVerificationOptions { Audience = _claims.Audience, AgentPublicKey = _agent.PublicKey, KeyResolver = _trust, Now = Now }).IsValid;

    [Benchmark(Description = "credential verify")]
    public bool CredentialVerify() => Credentials.Verify(_credential, _trust, Now, TimeSpan.FromSeconds(30)).IsValid;

    [Benchmark(Description = "envelope seal 512 B")]
    public byte[] EnvelopeSeal() => Envelopes.Seal(_plainEnvelope, _envelopeKey).ToWire();

    [Benchmark(Description = "envelope verify 512 B")]
    public bool EnvelopeVerify() => Envelopes.Verify(_envelope, _trust, _envelopeOptions, Now).IsValid;
}
