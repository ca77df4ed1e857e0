using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// Signatures over governance messages that carry authority on a bus and across the bridge (<c>DomainHeartbeat</c>,
/// <c>PolicySynced</c>, <c>PolicyPublished</c>, <c>AgentQuarantined</c>: a working key of usage
/// <see cref="KeyUsage.Envelope"/>, the domain's voice on the bus; <c>AgentReleased</c>: the domain's root key). The
/// message carries it in its <c>Signature</c> member as a JWS with a detached payload (RFC 7515 appendix F,
/// <c>header..signature</c>, <c>typ: meshbus-governance+jwt</c>, <c>alg: EdDSA</c>, <c>kid</c>). The payload is the
/// RFC 8785 canonical JSON of <c>{"message": &lt;the message without its signature&gt;, "type": &lt;type name&gt;}</c>
/// (camelCase members, enums as numbers, times as UTC <c>yyyy-MM-ddTHH:mm:ss.fffffffZ</c>), so a receiver rebuilds
/// it from the fields it received: every field, sequences and times included, is covered and a message is
/// verifiable by anyone who resolves the signer's key (a peer pinning the domain's root and holding its key set).
/// </summary>
public static class GovernanceSignatures
{
    /// <summary>The JWS <c>typ</c>.</summary>
    public const string Type = "meshbus-governance+jwt";

    /// <summary>The name of the member that carries the signature (excluded from the payload).</summary>
    public const string SignatureMember = "signature";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new UtcTimeConverter() } };

    /// <summary>The canonical payload bytes of <paramref name="message"/> (without its signature).</summary>
    /// <exception cref="StrictJsonException">A number outside ±2^53 (no genuine message has one).</exception>
    public static byte[] Payload(object message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var node = JsonSerializer.SerializeToNode(message, message.GetType(), Json)!.AsObject();
        node.Remove(SignatureMember);
        var document = new JsonObject { ["message"] = node, ["type"] = message.GetType().Name };
        return Canonical.Json(JsonSerializer.SerializeToElement(document));
    }

    /// <summary>Signs <paramref name="message"/> with a working key; returns the detached JWS for its <c>Signature</c>.</summary>
    public static string Sign(object message, ISigner signer)
    {
        ArgumentNullException.ThrowIfNull(signer);
        return Detach(CompactJws.Sign(StrictJson.Parse(Payload(message)), Type, signer));
    }

    /// <summary>Signs <paramref name="message"/> with the domain's root key, under <see cref="RootKey.PolicyKeyId"/>.</summary>
    public static string SignAsRoot(object message, RootKey root)
    {
        ArgumentNullException.ThrowIfNull(root);
        return Detach(CompactJws.Sign(StrictJson.Parse(Payload(message)), Type, RootKey.PolicyKeyId(root.VerifierKey), root.Sign));
    }

    /// <summary>
    /// Verifies <paramref name="signature"/> over <paramref name="message"/> with the key of <paramref name="domain"/>
    /// named by its <c>kid</c>, of <paramref name="usage"/>, valid at <paramref name="at"/>. Never throws on input.
    /// </summary>
    public static VerificationResult<string> Verify(object message, string? signature, string domain, KeyUsage usage, IKeyResolver keys, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var parsed = Attach(message, signature);
        if (!parsed.IsValid)
        {
            return VerificationResult<string>.Fail(parsed.Reason, parsed.Detail);
        }

        var key = keys.Resolve(domain, parsed.Value!.KeyId, usage, at);
        if (!key.Found)
        {
            return VerificationResult<string>.Fail(key.Reason, $"{message.GetType().Name}: {key.Detail}");
        }

        return parsed.Value.VerifySignature(key.PublicKey)
            ? VerificationResult<string>.Ok(parsed.Value.KeyId)
            : VerificationResult<string>.Fail(GovernanceReason.SignatureInvalid, $"{message.GetType().Name} signature does not verify with {domain}'s key {parsed.Value.KeyId}");
    }

    /// <summary>Verifies a signature made with <see cref="SignAsRoot"/> against a pinned root verifier key. Never throws on input.</summary>
    public static VerificationResult<string> VerifyByRoot(object message, string? signature, VerifierKey root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var parsed = Attach(message, signature);
        if (!parsed.IsValid)
        {
            return VerificationResult<string>.Fail(parsed.Reason, parsed.Detail);
        }

        if (parsed.Value!.KeyId != RootKey.PolicyKeyId(root))
        {
            return VerificationResult<string>.Fail(GovernanceReason.SignatureInvalid, $"{message.GetType().Name} is signed by '{parsed.Value.KeyId}', not by the root {RootKey.PolicyKeyId(root)}");
        }

        return parsed.Value.VerifySignature(root.PublicKey)
            ? VerificationResult<string>.Ok(parsed.Value.KeyId)
            : VerificationResult<string>.Fail(GovernanceReason.SignatureInvalid, $"{message.GetType().Name} signature does not verify with the root of {root.Name}");
    }

    private static string Detach(string compact)
    {
        var parts = compact.Split('.');
        return parts[0] + ".." + parts[2];
    }

    private static VerificationResult<ParsedJws> Attach(object message, string? signature)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (string.IsNullOrEmpty(signature))
        {
            return VerificationResult<ParsedJws>.Fail(GovernanceReason.SignatureInvalid, $"{message.GetType().Name} is not signed");
        }

        var parts = signature.Split('.');
        if (parts.Length != 3 || parts[1].Length != 0)
        {
            return VerificationResult<ParsedJws>.Fail(GovernanceReason.SignatureInvalid, $"{message.GetType().Name} signature is not a detached JWS (header..signature)");
        }

        byte[] payload;
        try
        {
            payload = Payload(message);
        }
        catch (Exception e) when (e is StrictJsonException or JsonException or NotSupportedException)
        {
            return VerificationResult<ParsedJws>.Fail(GovernanceReason.MalformedInput, $"{message.GetType().Name} cannot be canonicalized: {e.Message}");
        }

        return CompactJws.Parse(parts[0] + "." + Base64Url.Encode(payload) + "." + parts[2], Type);
    }

    /// <summary>Times in one form whatever offset a serializer on the way chose: UTC with seven fractional digits.</summary>
    private sealed class UtcTimeConverter : JsonConverter<DateTimeOffset>
    {
        public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            DateTimeOffset.Parse(reader.GetString()!, CultureInfo.InvariantCulture);

        public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
            writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// Signs the governance statements a worker makes, with the domain's current <see cref="KeyUsage.Envelope"/> key (one
/// place for Sync's heartbeats and acknowledgements and Enforce's quarantines).
/// </summary>
/// <param name="envelopeKey">The current envelope key (resolved on every call, so a rotation is picked up).</param>
public sealed class GovernanceSigner(Func<ISigner> envelopeKey)
{
    /// <summary>A signer from a domain directory loaded with the envelope usage.</summary>
    public static GovernanceSigner From(DomainKeys keys, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(clock);
        return new GovernanceSigner(() => keys.Signer(KeyUsage.Envelope, clock.GetUtcNow()));
    }

    /// <summary>
    /// A signer that loads the envelope key of the domain directory on first use (a worker that never states anything
    /// needs no key); a missing or unreadable key then fails that statement with <see cref="KeyFileException"/>.
    /// </summary>
    public static GovernanceSigner FromDirectory(string keyDirectory, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(keyDirectory);
        ArgumentNullException.ThrowIfNull(clock);
        var keys = new Lazy<DomainKeys>(() => DomainKeys.Load(keyDirectory, KeyUsage.Envelope));
        return new GovernanceSigner(() => keys.Value.Signer(KeyUsage.Envelope, clock.GetUtcNow()));
    }

    /// <summary>The heartbeat with its signature.</summary>
    public DomainHeartbeat Sign(DomainHeartbeat message) => message with { Signature = GovernanceSignatures.Sign(message with { Signature = null }, Key()) };

    /// <summary>The acknowledgement with its signature.</summary>
    public PolicySynced Sign(PolicySynced message) => message with { Signature = GovernanceSignatures.Sign(message with { Signature = null }, Key()) };

    /// <summary>The quarantine with its signature.</summary>
    public AgentQuarantined Sign(AgentQuarantined message) => message with { Signature = GovernanceSignatures.Sign(message with { Signature = null }, Key()) };

    private ISigner Key()
    {
        var key = envelopeKey();
        return key.Usage == KeyUsage.Envelope
            ? key
            : throw new ArgumentException($"governance statements are signed with an envelope key, not a {key.Usage.ToWire()} key");
    }
}

/// <summary>
/// Verifies governance statements where they are consumed: heartbeats, acknowledgements and quarantines by an
/// envelope key of the domain that states them (its own key set, or a pinned peer's accepted key set); releases by
/// the root of the releasing domain. Every check returns a reason; nothing throws on input.
/// </summary>
/// <param name="keys">The trust config (own key set and accepted peer key sets).</param>
/// <param name="roots">The root verifier keys by domain (the own root and the pinned peers' roots).</param>
public sealed class GovernanceVerifier(IKeyResolver keys, IReadOnlyDictionary<string, VerifierKey> roots)
{
    /// <summary>The roots a domain's verifier knows: the peers pinned in <paramref name="trust"/> and its own root.</summary>
    public static IReadOnlyDictionary<string, VerifierKey> RootsOf(TrustConfig? trust, VerifierKey? ownRoot)
    {
        var roots = trust is null
            ? new Dictionary<string, VerifierKey>(StringComparer.Ordinal)
            : new Dictionary<string, VerifierKey>(trust.PinnedRoots, StringComparer.Ordinal);
        if (ownRoot is not null)
        {
            roots[ownRoot.Name] = ownRoot;
        }

        return roots;
    }

    /// <summary>A heartbeat signed by its domain's envelope key.</summary>
    public VerificationResult<string> Verify(DomainHeartbeat message, DateTimeOffset now) =>
        GovernanceSignatures.Verify(message, message.Signature, message.Domain, KeyUsage.Envelope, keys, now);

    /// <summary>An acknowledgement signed by the acknowledging domain's envelope key.</summary>
    public VerificationResult<string> Verify(PolicySynced message, DateTimeOffset now) =>
        GovernanceSignatures.Verify(message, message.Signature, message.Domain, KeyUsage.Envelope, keys, now);

    /// <summary>A quarantine signed by the quarantining domain's envelope key.</summary>
    public VerificationResult<string> Verify(AgentQuarantined message, DateTimeOffset now) =>
        GovernanceSignatures.Verify(message, message.Signature, message.Domain, KeyUsage.Envelope, keys, now);

    /// <summary>A release signed by the releasing domain's root that names the quarantine it lifts.</summary>
    public VerificationResult<string> Verify(AgentReleased message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.QuarantinedAt is null)
        {
            return VerificationResult<string>.Fail(GovernanceReason.MalformedInput, $"the release of {message.Agent} names no quarantine (QuarantinedAt)");
        }

        return roots.TryGetValue(message.Domain, out var root)
            ? GovernanceSignatures.VerifyByRoot(message, message.Signature, root)
            : VerificationResult<string>.Fail(GovernanceReason.UnknownDomain, $"no root pinned for '{message.Domain}'");
    }
}
