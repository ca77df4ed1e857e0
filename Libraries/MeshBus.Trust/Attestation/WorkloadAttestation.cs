using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>What an attester vouches for about a workload.</summary>
/// <param name="Attester">The attester's registered name (its verifier key name).</param>
/// <param name="Agent">The agent subject the workload runs as.</param>
/// <param name="AgentKey">The workload's Ed25519 public key, base64url.</param>
/// <param name="ImageDigest">The measured image digest.</param>
/// <param name="Runtime">The runtime observed, if any.</param>
/// <param name="Owner">The owner, if any.</param>
/// <param name="Groups">Groups, if any.</param>
/// <param name="IssuedAt">When the attester signed.</param>
/// <param name="ExpiresAt">Until when the statement may be used to obtain credentials.</param>
public sealed record AttestationStatement(
    string Attester,
    string Agent,
    string AgentKey,
    string ImageDigest,
    string? Runtime,
    string? Owner,
    IReadOnlyList<string> Groups,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt);

/// <summary>Verifies the attestation an agent presents with <see cref="IssueCredential"/>.</summary>
public interface IAttestationVerifier
{
    /// <summary>
    /// Verifies <paramref name="attestation"/> and returns what it attests. The caller checks that the statement
    /// names the requesting agent and key.
    /// </summary>
    VerificationResult<AttestationStatement> Verify(string attestation, DateTimeOffset now);
}

/// <summary>
/// A workload attester's signing key (e.g. a node agent or CI system that measured the image). Its verifier key
/// (name = attester name) is registered in the domain directory's <c>attesters/</c>.
/// </summary>
public sealed class AttesterKey
{
    private readonly byte[] _privateKey;

    /// <summary>Wraps an attester private seed.</summary>
    public AttesterKey(string name, byte[] privateKey)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _privateKey = (byte[])privateKey.Clone();
        Name = name;
        VerifierKey = VerifierKey.Create(name, Ed25519Keys.PublicKeyOf(_privateKey));
    }

    /// <summary>The attester's name.</summary>
    public string Name { get; }

    /// <summary>The verifier key to register.</summary>
    public VerifierKey VerifierKey { get; }

    /// <summary>Creates a new attester key.</summary>
    public static AttesterKey Generate(string name) => new(name, Ed25519Keys.NewPrivateKey());

    /// <summary>Reads an attester key file (owner-only).</summary>
    public static AttesterKey Load(string path)
    {
        try
        {
            var o = StrictJson.Parse(KeyFiles.ReadPrivate(path));
            if (ClaimsJson.String(o, "type") != "meshbus-attester-key/v1")
            {
                throw new FormatException("not a meshbus-attester-key/v1 file");
            }

            return new AttesterKey(ClaimsJson.String(o, "name"), Base64Url.Decode(ClaimsJson.String(o, "privateKey")));
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new KeyFileException($"attester key file '{path}' is malformed: {e.Message}", e);
        }
    }

    /// <summary>Writes the key file owner-only.</summary>
    public void Save(string path)
    {
        var o = new JsonObject { ["type"] = "meshbus-attester-key/v1", ["name"] = Name, ["privateKey"] = Base64Url.Encode(_privateKey) };
        KeyFiles.WritePrivate(path, o.ToJsonString() + "\n");
    }

    /// <summary>Signs a statement: JWS compact, <c>typ: meshbus-attestation+jwt</c>, <c>kid</c> = attester name.</summary>
    public string Attest(AttestationStatement statement)
    {
        ArgumentNullException.ThrowIfNull(statement);
        if (statement.Attester != Name)
        {
            throw new ArgumentException($"statement names attester '{statement.Attester}', not '{Name}'", nameof(statement));
        }

        ClaimsJson.CheckAgentKey(statement.AgentKey, "the attested agent key");
        var payload = new JsonObject
        {
            ["iss"] = statement.Attester,
            ["sub"] = statement.Agent,
            ["cnf"] = ClaimsJson.Confirmation(statement.AgentKey),
            ["image_digest"] = statement.ImageDigest,
            ["groups"] = new JsonArray(statement.Groups.Select(g => (JsonNode)JsonValue.Create(g)!).ToArray()),
            ["iat"] = ClaimsJson.Seconds(statement.IssuedAt),
            ["exp"] = ClaimsJson.Seconds(statement.ExpiresAt),
        };
        if (statement.Runtime is not null)
        {
            payload["runtime"] = statement.Runtime;
        }

        if (statement.Owner is not null)
        {
            payload["owner"] = statement.Owner;
        }

        return CompactJws.Sign(JsonSerializer.SerializeToElement(payload), SignedStatementAttestationVerifier.Type, Name, data => Ed25519Keys.Sign(_privateKey, data));
    }
}

/// <summary>
/// The shipped <see cref="IAttestationVerifier"/>: a statement (JWS, <c>typ: meshbus-attestation+jwt</c>,
/// <c>alg: EdDSA</c>) signed by a registered workload attester, naming the agent (<c>sub</c>), its public key
/// (<c>cnf</c>), its image digest and optional runtime, owner and groups, with <c>iat</c> and <c>exp</c>.
/// </summary>
public sealed class SignedStatementAttestationVerifier : IAttestationVerifier
{
    /// <summary>The JWS <c>typ</c> of an attestation statement.</summary>
    public const string Type = "meshbus-attestation+jwt";

    private readonly Dictionary<string, VerifierKey> _attesters;
    private readonly TimeSpan _skew;

    /// <summary>Creates the verifier from the registered attester keys.</summary>
    public SignedStatementAttestationVerifier(IEnumerable<VerifierKey> attesters, TimeSpan skew)
    {
        ArgumentNullException.ThrowIfNull(attesters);
        _attesters = attesters.ToDictionary(a => a.Name, StringComparer.Ordinal);
        _skew = skew;
    }

    /// <summary>Loads the attesters registered in a domain directory's <c>attesters/*.vkey</c>.</summary>
    public static SignedStatementAttestationVerifier FromDomainDirectory(string directory, TimeSpan skew)
    {
        var dir = Path.Combine(directory, DomainKeys.AttestersDirectory);
        var keys = Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir, "*.vkey").Order(StringComparer.Ordinal).Select(f => VerifierKey.Parse(File.ReadAllText(f))).ToList()
            : [];
        return new SignedStatementAttestationVerifier(keys, skew);
    }

    /// <summary>Registers an attester's verifier key in a domain directory; returns the file written.</summary>
    public static string Register(string domainDirectory, VerifierKey attester)
    {
        ArgumentNullException.ThrowIfNull(attester);
        var dir = Path.Combine(domainDirectory, DomainKeys.AttestersDirectory);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, TrustFiles.Slug(attester.Name) + ".vkey");
        KeyFiles.WritePublic(path, attester + "\n");
        return path;
    }

    /// <inheritdoc/>
    public VerificationResult<AttestationStatement> Verify(string attestation, DateTimeOffset now)
    {
        var parsed = CompactJws.Parse(attestation, Type);
        if (!parsed.IsValid)
        {
            return Fail(parsed.Detail);
        }

        var token = parsed.Value!;
        if (!_attesters.TryGetValue(token.KeyId, out var attester))
        {
            return Fail($"attester '{token.KeyId}' is not registered");
        }

        if (!token.VerifySignature(attester.PublicKey))
        {
            return VerificationResult<AttestationStatement>.Fail(GovernanceReason.SignatureInvalid, "attestation signature does not verify");
        }

        AttestationStatement s;
        try
        {
            var p = token.Payload;
            if (ClaimsJson.String(p, "iss") != attester.Name)
            {
                return Fail("attestation issuer does not match its key");
            }

            s = new AttestationStatement(
                attester.Name,
                ClaimsJson.String(p, "sub"),
                ClaimsJson.ReadConfirmation(p),
                ClaimsJson.String(p, "image_digest"),
                ClaimsJson.OptionalString(p, "runtime"),
                ClaimsJson.OptionalString(p, "owner"),
                ClaimsJson.StringArray(p, "groups"),
                ClaimsJson.Time(p, "iat"),
                ClaimsJson.Time(p, "exp"));
        }
        catch (FormatException e)
        {
            return Fail(e.Message);
        }

        if (now < s.IssuedAt - _skew)
        {
            return Fail("attestation issued in the future");
        }

        if (now >= s.ExpiresAt + _skew)
        {
            return Fail($"attestation expired at {s.ExpiresAt:O}");
        }

        return VerificationResult<AttestationStatement>.Ok(s);
    }

    private static VerificationResult<AttestationStatement> Fail(string detail) => VerificationResult<AttestationStatement>.Fail(GovernanceReason.CredentialInvalid, detail);
}
