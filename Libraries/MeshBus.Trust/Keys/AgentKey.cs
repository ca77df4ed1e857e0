using System.Text.Json.Nodes;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// An agent's own key pair as a file (<c>meshbus agent keygen</c>): JSON
/// <c>{"type":"meshbus-agent-key/v1","publicKey":b64url,"privateKey":b64url}</c>, owner-only.
/// </summary>
public sealed class AgentKey
{
    private readonly byte[] _privateKey;

    /// <summary>Wraps a private seed.</summary>
    public AgentKey(byte[] privateKey)
    {
        ArgumentNullException.ThrowIfNull(privateKey);
        _privateKey = (byte[])privateKey.Clone();
        PublicKey = Ed25519Keys.PublicKeyOf(_privateKey);
    }

    /// <summary>The raw public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>The public key, base64url (what <see cref="Contracts.IssueCredential.AgentPublicKey"/> carries).</summary>
    public string PublicKeyText => Base64Url.Encode(PublicKey);

    /// <summary>The private seed (to sign intents with <see cref="IntentSignature.Sign"/>).</summary>
    public ReadOnlySpan<byte> PrivateKey => _privateKey;

    /// <summary>Creates a new key pair.</summary>
    public static AgentKey Generate() => new(Ed25519Keys.NewPrivateKey());

    /// <summary>Reads a key file, refusing it when others can read it.</summary>
    public static AgentKey Load(string path)
    {
        try
        {
            var o = StrictJson.Parse(KeyFiles.ReadPrivate(path));
            if (ClaimsJson.String(o, "type") != "meshbus-agent-key/v1")
            {
                throw new FormatException("not a meshbus-agent-key/v1 file");
            }

            var key = new AgentKey(Base64Url.Decode(ClaimsJson.String(o, "privateKey")));
            return ClaimsJson.String(o, "publicKey") == key.PublicKeyText ? key : throw new FormatException("publicKey does not match privateKey");
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new KeyFileException($"agent key file '{path}' is malformed: {e.Message}", e);
        }
    }

    /// <summary>Writes the key file with mode 0600.</summary>
    public void Save(string path)
    {
        var o = new JsonObject { ["type"] = "meshbus-agent-key/v1", ["publicKey"] = PublicKeyText, ["privateKey"] = Base64Url.Encode(_privateKey) };
        KeyFiles.WritePrivate(path, o.ToJsonString() + "\n");
    }
}
