using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust.Tests;

/// <summary>A domain with a root key, one signer per usage and a signed key set, for tests.</summary>
internal sealed class TestDomain
{
    public static readonly DateTimeOffset Now = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    public TestDomain(string name = "acme.example/prod")
    {
        Name = name;
        Root = RootKey.Generate(name);
        Signers = KeyUsages.All.ToDictionary(u => u, Ed25519Signer.Generate);
        KeySet = new KeySet(name, 1, Now.AddDays(-1), Now.AddDays(30), Signers.Values.Select(s => Entry(s)).ToList(), []);
        SignedKeySet = KeySet.Sign(Root);
        Trust = new TrustConfig([Root.VerifierKey], KeySet);
    }

    public string Name { get; }

    public RootKey Root { get; }

    public Dictionary<KeyUsage, Ed25519Signer> Signers { get; }

    public KeySet KeySet { get; }

    public string SignedKeySet { get; }

    public TrustConfig Trust { get; }

    public static KeySetEntry Entry(ISigner s, int validDays = 90) =>
        new(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), Now.AddDays(-1), Now.AddDays(validDays));

    public static (byte[] Private, byte[] Public) AgentKey()
    {
        var priv = Ed25519Keys.NewPrivateKey();
        return (priv, Ed25519Keys.PublicKeyOf(priv));
    }

    public static IntentSubmitted Intent(string domain = "acme.example/prod", string target = "acme.example/prod") =>
        new(Guid.Parse("8b0a7c36-5d0e-4a55-9b39-0d8b7f3c2a11"), domain, domain + "/agents/deployer", target, "deploy", "k8s://cluster-a/ns/web",
            System.Text.Json.JsonDocument.Parse("""{"replicas":3,"image":"web:1.2"}""").RootElement.Clone(),
            600, "n-5f2c", Now, "", "");

    public GrantClaims Grant(byte[] agentPublicKey, string digest = "sha256:00") =>
        new(Name, Name + "/agents/deployer", Name, "g-1", Intent().IntentId, digest, "deploy", "k8s://cluster-a/ns/web",
            [new PolicyVersion(Name, PolicyScope.Domain, 7, "sha256:aa")], 42, Base64Url.Encode(agentPublicKey), Now, Now, Now.AddMinutes(5));

    public CredentialClaims Credential(byte[] agentPublicKey) =>
        new(Name, Name + "/agents/deployer", "c-1", Base64Url.Encode(agentPublicKey),
            new AgentAttributes("sha256:abcd", "k8s", "team-web", ["deployers"]), Now, Now, Now.AddMinutes(15));
}
