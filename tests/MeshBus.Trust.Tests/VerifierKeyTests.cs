namespace MeshBus.Trust.Tests;

public sealed class VerifierKeyTests
{
    // The verifier key from the golang.org/x/mod/sumdb/note documentation (the reference implementation of
    // c2sp.org/signed-note): name PeterNeumann, key id c74f20a3.
    private const string GoExample = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

    [Fact]
    public void The_reference_verifier_key_parses_and_its_key_id_matches()
    {
        var key = VerifierKey.Parse(GoExample);
        Assert.Equal("PeterNeumann", key.Name);
        Assert.Equal(0xc74f20a3u, key.KeyId);
        Assert.Equal(VerifierKey.Ed25519Type, key.SignatureType);
        Assert.Equal(GoExample, key.ToString());
    }

    [Fact]
    public void A_created_key_round_trips()
    {
        var signer = Ed25519Signer.Generate(KeyUsage.Log);
        var key = VerifierKey.Create("acme.example/prod/lineage", signer.PublicKey);
        Assert.Equal(key, VerifierKey.Parse(key.ToString()));
        var cosign = VerifierKey.Create("acme.example/prod/witness", signer.PublicKey, VerifierKey.CosignatureType);
        Assert.NotEqual(VerifierKey.Create("acme.example/prod/witness", signer.PublicKey).KeyId, cosign.KeyId);
        Assert.Equal(cosign, VerifierKey.Parse(cosign.ToString()));
    }

    [Theory]
    [InlineData("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")] // wrong id
    [InlineData("PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")] // other name
    [InlineData("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")] // uppercase hex
    [InlineData("PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")] // unknown type
    [InlineData("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10")] // short key
    [InlineData("PeterNeumann+c74f20a3")]
    [InlineData("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")]
    [InlineData("")]
    public void Malformed_verifier_keys_are_rejected(string text)
    {
        Assert.Throws<FormatException>(() => VerifierKey.Parse(text));
    }
}
