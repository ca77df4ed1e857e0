using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>A message to bridge to another domain, before signing.</summary>
/// <param name="From">The sending domain.</param>
/// <param name="To">The receiving domain.</param>
/// <param name="LinkSeq">The sender's per-link sequence (a gap makes the receiver ask for a resend).</param>
/// <param name="Id">Unique message id (the replay key).</param>
/// <param name="Type">The message type, e.g. <c>IntentEndorsed</c>; selects the TTL.</param>
/// <param name="IssuedAt">When it was sealed (milliseconds are kept).</param>
/// <param name="ExpiresAt">When it stops being acceptable.</param>
/// <param name="Payload">The exact payload bytes (usually the message JSON).</param>
public sealed record Envelope(string From, string To, long LinkSeq, Guid Id, string Type, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, ReadOnlyMemory<byte> Payload);

/// <summary>
/// A sealed envelope as it travels: <see cref="Body"/> is the RFC 8785 canonical JSON
/// <c>{expiresAt, from, id, issuedAt, linkSeq, payload, to, type}</c> (times in Unix milliseconds, payload base64url),
/// and <see cref="Signature"/> the sender's envelope key signature over <c>"meshbus-envelope/v1\n"</c> + the exact
/// body bytes. <see cref="ToWire"/> gives <c>{"body": b64url, "kid": …, "sig": b64url}</c>.
/// </summary>
/// <param name="Body">The exact signed body bytes.</param>
/// <param name="KeyId">The sender's envelope key id.</param>
/// <param name="Signature">The Ed25519 signature.</param>
public sealed record SealedEnvelope(byte[] Body, string KeyId, byte[] Signature)
{
    /// <summary>The wire form (UTF-8 JSON).</summary>
    public byte[] ToWire() => JsonSerializer.SerializeToUtf8Bytes(new JsonObject
    {
        ["body"] = Base64Url.Encode(Body),
        ["kid"] = KeyId,
        ["sig"] = Base64Url.Encode(Signature),
    });

    /// <summary>Parses the wire form strictly; throws <see cref="StrictJsonException"/>.</summary>
    public static SealedEnvelope FromWire(ReadOnlySpan<byte> wire)
    {
        var o = StrictJson.Parse(wire, maxDepth: 4);
        if (o.ValueKind != JsonValueKind.Object || o.EnumerateObject().Count() != 3)
        {
            throw new StrictJsonException("an envelope is {body, kid, sig}");
        }

        try
        {
            return new SealedEnvelope(Base64Url.Decode(ClaimsJson.String(o, "body")), ClaimsJson.String(o, "kid"), Base64Url.Decode(ClaimsJson.String(o, "sig")));
        }
        catch (FormatException e)
        {
            throw new StrictJsonException("malformed envelope: " + e.Message, e);
        }
    }
}

/// <summary>Remembers envelope ids until they can no longer be accepted anyway (durable and shared by replicas in a fleet).</summary>
public interface ISeenIdStore
{
    /// <summary>
    /// Records (<paramref name="from"/>, <paramref name="id"/>) until <paramref name="keepUntil"/>. Returns false when
    /// it was already recorded (a replay or a redelivery).
    /// </summary>
    ValueTask<bool> TryMarkSeenAsync(string from, Guid id, DateTimeOffset keepUntil, CancellationToken cancellationToken = default);
}

/// <summary>An in-process <see cref="ISeenIdStore"/> (embedded mode and tests); forgets entries after their keep-until time.</summary>
public sealed class InMemorySeenIdStore(TimeProvider time) : ISeenIdStore
{
    private readonly ConcurrentDictionary<(string From, Guid Id), DateTimeOffset> _seen = new();
    private long _inserts;

    /// <summary>Number of ids currently remembered.</summary>
    public int Count => _seen.Count;

    /// <inheritdoc/>
    public ValueTask<bool> TryMarkSeenAsync(string from, Guid id, DateTimeOffset keepUntil, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        if (Interlocked.Increment(ref _inserts) % 1024 == 0)
        {
            foreach (var (key, until) in _seen)
            {
                if (until < now)
                {
                    _seen.TryRemove(key, out _);
                }
            }
        }

        var added = false;
        _seen.AddOrUpdate((from, id), _ => { added = true; return keepUntil; }, (_, until) =>
        {
            if (until < now)
            {
                added = true; // expired entry: this is a new acceptance window
                return keepUntil;
            }

            return until;
        });
        return ValueTask.FromResult(added);
    }
}

/// <summary>Freshness rules of bridged messages.</summary>
public sealed record EnvelopeOptions
{
    /// <summary>The receiving domain (envelopes addressed elsewhere are refused).</summary>
    public required string LocalDomain { get; init; }

    /// <summary>The longest lifetime (<c>expiresAt − issuedAt</c>) accepted per message type; unknown types are refused.</summary>
    public required IReadOnlyDictionary<string, TimeSpan> TimeToLive { get; init; }

    /// <summary>Tolerated clock difference.</summary>
    public TimeSpan Skew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The largest accepted wire message.</summary>
    public int MaxBytes { get; init; } = 1024 * 1024;
}

/// <summary>Seals and opens bridge envelopes (DESIGN.md §6).</summary>
public static class Envelopes
{
    /// <summary>The signature domain-separation prefix.</summary>
    public const string SignaturePrefix = "meshbus-envelope/v1\n";

    /// <summary>Seals an envelope with the sender's envelope key.</summary>
    public static SealedEnvelope Seal(Envelope envelope, ISigner envelopeKey)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(envelopeKey);
        if (envelopeKey.Usage != KeyUsage.Envelope)
        {
            throw new ArgumentException($"an envelope is signed with an envelope key, not a {envelopeKey.Usage.ToWire()} key", nameof(envelopeKey));
        }

        var body = Canonical.Json(JsonSerializer.SerializeToElement(new JsonObject
        {
            ["from"] = envelope.From,
            ["to"] = envelope.To,
            ["linkSeq"] = envelope.LinkSeq,
            ["id"] = envelope.Id.ToString("D"),
            ["type"] = envelope.Type,
            ["issuedAt"] = envelope.IssuedAt.ToUnixTimeMilliseconds(),
            ["expiresAt"] = envelope.ExpiresAt.ToUnixTimeMilliseconds(),
            ["payload"] = Base64Url.Encode(envelope.Payload.Span),
        }));
        return new SealedEnvelope(body, envelopeKey.KeyId, envelopeKey.Sign(SigningInput(body)));
    }

    /// <summary>
    /// Verifies a wire envelope without the replay check: size, structure, the sender's envelope key (through
    /// <paramref name="keys"/>), the signature, the recipient, the type's TTL and freshness with skew. The returned
    /// payload is exactly the bytes the signature covers.
    /// </summary>
    public static VerificationResult<Envelope> Verify(ReadOnlySpan<byte> wire, IKeyResolver keys, EnvelopeOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(options);
        if (wire.Length > options.MaxBytes)
        {
            return Fail(GovernanceReason.MalformedInput, $"envelope larger than {options.MaxBytes} bytes");
        }

        SealedEnvelope sealedEnvelope;
        Envelope e;
        try
        {
            sealedEnvelope = SealedEnvelope.FromWire(wire);
            e = ParseBody(sealedEnvelope.Body);
        }
        catch (FormatException ex)
        {
            return Fail(GovernanceReason.MalformedInput, ex.Message);
        }

        var key = keys.Resolve(e.From, sealedEnvelope.KeyId, KeyUsage.Envelope, now);
        if (!key.Found)
        {
            return Fail(key.Reason, key.Detail);
        }

        if (!Ed25519Keys.Verify(key.PublicKey, SigningInput(sealedEnvelope.Body), sealedEnvelope.Signature))
        {
            return Fail(GovernanceReason.SignatureInvalid, "envelope signature does not verify");
        }

        if (e.To != options.LocalDomain)
        {
            return Fail(GovernanceReason.MalformedInput, $"envelope addressed to {e.To}, not {options.LocalDomain}");
        }

        if (!options.TimeToLive.TryGetValue(e.Type, out var ttl))
        {
            return Fail(GovernanceReason.MalformedInput, $"unknown envelope type '{e.Type}'");
        }

        if (e.ExpiresAt < e.IssuedAt || e.ExpiresAt - e.IssuedAt > ttl)
        {
            return Fail(GovernanceReason.MalformedInput, $"envelope lifetime exceeds the {ttl} TTL of {e.Type}");
        }

        if (now < e.IssuedAt - options.Skew)
        {
            return Fail(GovernanceReason.MalformedInput, "envelope issued in the future");
        }

        if (now > e.ExpiresAt + options.Skew)
        {
            return Fail(GovernanceReason.SyncStale, $"envelope expired at {e.ExpiresAt:O}");
        }

        return VerificationResult<Envelope>.Ok(e);
    }

    /// <summary>
    /// <see cref="Verify"/>, then records the id in <paramref name="seen"/> until expiry + skew; a second delivery of
    /// the same (from, id) fails with <see cref="GovernanceReason.ReplayDetected"/>. Only validly signed envelopes are
    /// recorded, so forged traffic cannot fill the store or shadow real messages.
    /// </summary>
    public static async ValueTask<VerificationResult<Envelope>> OpenAsync(ReadOnlyMemory<byte> wire, IKeyResolver keys, EnvelopeOptions options, ISeenIdStore seen, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(seen);
        var result = Verify(wire.Span, keys, options, now);
        if (!result.IsValid)
        {
            return result;
        }

        var e = result.Value!;
        return await seen.TryMarkSeenAsync(e.From, e.Id, e.ExpiresAt + options.Skew, cancellationToken)
            ? result
            : Fail(GovernanceReason.ReplayDetected, $"envelope {e.Id} from {e.From} was already received");
    }

    private static Envelope ParseBody(byte[] body)
    {
        var o = StrictJson.Parse(body, maxDepth: 4);
        if (o.ValueKind != JsonValueKind.Object || o.EnumerateObject().Count() != 8)
        {
            throw new StrictJsonException("envelope body must have exactly from, to, linkSeq, id, type, issuedAt, expiresAt, payload");
        }

        return new Envelope(
            ClaimsJson.String(o, "from"),
            ClaimsJson.String(o, "to"),
            ClaimsJson.Integer(o, "linkSeq"),
            ClaimsJson.Guid(o, "id"),
            ClaimsJson.String(o, "type"),
            Millis(ClaimsJson.Integer(o, "issuedAt")),
            Millis(ClaimsJson.Integer(o, "expiresAt")),
            o.GetProperty("payload").ValueKind == JsonValueKind.String ? Base64Url.Decode(o.GetProperty("payload").GetString()!) : throw new StrictJsonException("payload must be a base64url string"));
    }

    private static DateTimeOffset Millis(long ms) =>
        ms is >= 0 and <= 253402300799999 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : throw new StrictJsonException($"time {ms} out of range");

    private static byte[] SigningInput(byte[] body) => [.. Encoding.ASCII.GetBytes(SignaturePrefix), .. body];

    private static VerificationResult<Envelope> Fail(GovernanceReason reason, string detail) => VerificationResult<Envelope>.Fail(reason, detail);
}
