using System.Text.Encodings.Web;
using System.Text.Json;
using MeshBus.Contracts;

namespace MeshBus.Ledger.Decisions;

/// <summary>
/// A decision (first decision or renewal) as appended to the lineage log: the leaf is <see cref="ToBytes"/>, members in
/// ordinal order, no whitespace, so one record has one byte form. It is the dedupe of the intent: the stored
/// <see cref="Lease"/> rebuilds the byte-identical grant (<see cref="LeaseClaims.ToGrantClaims"/>). The Authorize worker
/// writes it; the evidence exporter, the CLI and a witness read it with <see cref="Parse"/>. See docs/authorization.md.
/// </summary>
/// <param name="Kind"><c>decision</c>, <c>renewal</c>, or <c>egress</c> (the origin's decision on an intent that targets
/// another domain: allowed, it is released as an endorsement, never as a grant).</param>
/// <param name="IntentId">The intent.</param>
/// <param name="Renewal">0 for the first decision, n for renewal n.</param>
/// <param name="Domain">The deciding domain.</param>
/// <param name="Agent">The verified agent subject.</param>
/// <param name="TargetDomain">The target domain.</param>
/// <param name="IntentDigest">The intent's canonical digest.</param>
/// <param name="Allowed">The outcome.</param>
/// <param name="Reason">The denial reason (None when allowed).</param>
/// <param name="Detail">Explanation.</param>
/// <param name="MatchedRules">Rule ids that matched.</param>
/// <param name="PolicyEpoch">The domain policy epoch (-1 when policy was not evaluated).</param>
/// <param name="PolicyDigest">The domain policy digest (empty when not evaluated).</param>
/// <param name="FederationEpoch">The federation epoch, if any.</param>
/// <param name="FederationDigest">The federation digest, if any.</param>
/// <param name="KeySetSequence">The key set sequence verified with.</param>
/// <param name="DecidedAt">When (unix milliseconds, decider's clock).</param>
/// <param name="Lease">The grant claims when allowed.</param>
/// <param name="Intent">The signed intent, kept so renewals re-evaluate exactly what was granted.</param>
public sealed record DecisionRecord(
    string Kind,
    Guid IntentId,
    int Renewal,
    string Domain,
    string Agent,
    string TargetDomain,
    string IntentDigest,
    bool Allowed,
    GovernanceReason Reason,
    string Detail,
    IReadOnlyList<string> MatchedRules,
    long PolicyEpoch,
    string PolicyDigest,
    long? FederationEpoch,
    string? FederationDigest,
    long KeySetSequence,
    long DecidedAt,
    LeaseClaims? Lease,
    IntentSubmitted Intent)
{
    /// <summary>The lineage entry type of a first decision.</summary>
    public const string DecisionType = "AuthorizationDecided";

    /// <summary>The <see cref="Kind"/> of an egress decision (origin side of a cross-domain intent).</summary>
    public const string EgressKind = "egress";

    /// <summary>The <see cref="Kind"/> of a first decision on an intent that targets the deciding domain.</summary>
    public const string DecisionKind = "decision";

    /// <summary>The <see cref="Kind"/> of a renewal decision.</summary>
    public const string RenewalKind = "renewal";

    /// <summary>The record format, in the leaf's <c>format</c> member.</summary>
    public const string Format = "meshbus-decision/v1";

    /// <summary>The lineage entry type of a renewal decision.</summary>
    public const string RenewalType = "RenewalDecided";

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonSerializerOptions IntentJson = new(JsonSerializerDefaults.Web) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>When an egress decision allowed: the window of the endorsement it is released as (null otherwise).</summary>
    public EndorsementTerms? Endorsement { get; init; }

    /// <summary>The lineage key of the first decision of an intent.</summary>
    public static string DecisionKey(Guid intentId) => "decision:" + intentId.ToString("D");

    /// <summary>The lineage key of renewal n of an intent.</summary>
    public static string RenewalKey(Guid intentId, int renewal) => $"renewal:{intentId:D}:{renewal}";

    /// <summary>The lineage key under which the Lineage worker records an execution's halt acknowledgement.</summary>
    public static string HaltedKey(Guid intentId) => "halted:" + intentId.ToString("D");

    /// <summary>The lineage key under which the Lineage worker records an execution's completion.</summary>
    public static string CompletedKey(Guid intentId) => "completed:" + intentId.ToString("D");

    /// <summary>The record's lineage key.</summary>
    public string Key => Renewal == 0 ? DecisionKey(IntentId) : RenewalKey(IntentId, Renewal);

    /// <summary>The record's lineage entry type.</summary>
    public string EntryType => Renewal == 0 ? DecisionType : RenewalType;

    /// <summary>The canonical bytes (the Merkle leaf).</summary>
    public byte[] ToBytes()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("agent", Agent);
            w.WriteString("decidedAt", DateTimeOffset.FromUnixTimeMilliseconds(DecidedAt).ToString("yyyy-MM-ddTHH:mm:ss.fffZ"));
            w.WriteString("detail", Detail);
            w.WriteString("domain", Domain);
            if (Endorsement is not null)
            {
                w.WriteStartObject("endorsement");
                w.WriteNumber("exp", Endorsement.ExpiresAt);
                w.WriteNumber("iat", Endorsement.IssuedAt);
                w.WriteEndObject();
            }

            if (FederationDigest is not null)
            {
                w.WriteString("federationDigest", FederationDigest);
            }

            if (FederationEpoch is not null)
            {
                w.WriteNumber("federationEpoch", FederationEpoch.Value);
            }

            // "format" names the record's shape; "type" is the lineage event type (AuthorizationDecided, or RenewalDecided
            // for a renewal), as in every other leaf, so an auditor's check that a leaf is the type its record claims
            // holds for decisions and renewals too.
            w.WriteString("format", Format);
            w.WritePropertyName("intent");
            JsonSerializer.Serialize(w, Intent, IntentJson);
            w.WriteString("intentDigest", IntentDigest);
            w.WriteString("intentId", IntentId.ToString("D"));
            w.WriteNumber("keySetSequence", KeySetSequence);
            w.WriteString("kind", Kind);
            if (Lease is not null)
            {
                WriteLease(w, Lease);
            }

            w.WriteStartArray("matchedRules");
            foreach (var rule in MatchedRules)
            {
                w.WriteStringValue(rule);
            }

            w.WriteEndArray();
            w.WriteString("outcome", Allowed ? "allow" : "deny");
            w.WriteString("policyDigest", PolicyDigest);
            w.WriteNumber("policyEpoch", PolicyEpoch);
            w.WriteString("reason", Reason.ToString());
            w.WriteNumber("renewal", Renewal);
            w.WriteString("targetDomain", TargetDomain);
            w.WriteString("type", EntryType);
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Reads a stored record; throws <see cref="FormatException"/> when it is not one.</summary>
    public static DecisionRecord Parse(ReadOnlySpan<byte> data)
    {
        try
        {
            using var doc = JsonDocument.Parse(data.ToArray());
            var r = doc.RootElement;
            if (!r.TryGetProperty("format", out var format) || format.GetString() != Format)
            {
                throw new FormatException("not a meshbus-decision/v1 record");
            }

            return new DecisionRecord(
                r.GetProperty("kind").GetString()!,
                Guid.Parse(r.GetProperty("intentId").GetString()!),
                r.GetProperty("renewal").GetInt32(),
                r.GetProperty("domain").GetString()!,
                r.GetProperty("agent").GetString()!,
                r.GetProperty("targetDomain").GetString()!,
                r.GetProperty("intentDigest").GetString()!,
                r.GetProperty("outcome").GetString() == "allow",
                Enum.Parse<GovernanceReason>(r.GetProperty("reason").GetString()!),
                r.GetProperty("detail").GetString()!,
                r.GetProperty("matchedRules").EnumerateArray().Select(e => e.GetString()!).ToArray(),
                r.GetProperty("policyEpoch").GetInt64(),
                r.GetProperty("policyDigest").GetString()!,
                r.TryGetProperty("federationEpoch", out var fe) ? fe.GetInt64() : null,
                r.TryGetProperty("federationDigest", out var fd) ? fd.GetString() : null,
                r.GetProperty("keySetSequence").GetInt64(),
                DateTimeOffset.Parse(r.GetProperty("decidedAt").GetString()!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(),
                r.TryGetProperty("lease", out var lease) ? ReadLease(lease) : null,
                r.GetProperty("intent").Deserialize<IntentSubmitted>(IntentJson) ?? throw new FormatException("record without intent"))
            {
                Endorsement = r.TryGetProperty("endorsement", out var e)
                    ? new EndorsementTerms(e.GetProperty("iat").GetInt64(), e.GetProperty("exp").GetInt64())
                    : null,
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            throw new FormatException("stored decision record is unreadable: " + e.Message, e);
        }
    }

    private static void WriteLease(Utf8JsonWriter w, LeaseClaims c)
    {
        w.WriteStartObject("lease");
        w.WriteString("action", c.Action);
        w.WriteString("aud", c.Audience);
        w.WriteString("cnf", c.AgentKey);
        w.WriteNumber("exp", c.ExpiresAt);
        if (c.FederationDigest is not null)
        {
            w.WriteString("federationDigest", c.FederationDigest);
        }

        if (c.FederationEpoch is not null)
        {
            w.WriteNumber("federationEpoch", c.FederationEpoch.Value);
        }

        w.WriteNumber("iat", c.IssuedAt);
        w.WriteString("intentDigest", c.IntentDigest);
        w.WriteString("intentId", c.IntentId.ToString("D"));
        w.WriteString("iss", c.Issuer);
        w.WriteString("jti", c.GrantId);
        w.WriteString("policyDigest", c.PolicyDigest);
        w.WriteNumber("policyEpoch", c.PolicyEpoch);
        w.WriteNumber("renewal", c.Renewal);
        w.WriteString("resource", c.Resource);
        w.WriteString("sub", c.Subject);
        w.WriteEndObject();
    }

    private static LeaseClaims ReadLease(JsonElement l) => new(
        l.GetProperty("jti").GetString()!,
        l.GetProperty("iss").GetString()!,
        l.GetProperty("sub").GetString()!,
        l.GetProperty("aud").GetString()!,
        Guid.Parse(l.GetProperty("intentId").GetString()!),
        l.GetProperty("intentDigest").GetString()!,
        l.GetProperty("action").GetString()!,
        l.GetProperty("resource").GetString()!,
        l.GetProperty("cnf").GetString()!,
        l.GetProperty("iat").GetInt64(),
        l.GetProperty("exp").GetInt64(),
        l.GetProperty("policyEpoch").GetInt64(),
        l.GetProperty("policyDigest").GetString()!,
        l.TryGetProperty("federationEpoch", out var fe) ? fe.GetInt64() : null,
        l.TryGetProperty("federationDigest", out var fd) ? fd.GetString() : null,
        l.GetProperty("renewal").GetInt32());
}

/// <summary>The window of an endorsement, stored with the egress decision so a redelivery re-signs the same bytes.</summary>
/// <param name="IssuedAt">Unix seconds (<c>iat</c>).</param>
/// <param name="ExpiresAt">Unix seconds (<c>exp</c>).</param>
public sealed record EndorsementTerms(long IssuedAt, long ExpiresAt);
