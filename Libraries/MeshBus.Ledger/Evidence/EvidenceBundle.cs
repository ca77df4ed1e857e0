using System.Text.Json;
using System.Text.Json.Nodes;

namespace MeshBus.Ledger.Evidence;

/// <summary>One lineage record in a bundle.</summary>
/// <param name="Type">Event type.</param>
/// <param name="Index">Index in its log.</param>
/// <param name="Leaf">The leaf bytes.</param>
/// <param name="Proof">The <c>c2sp.org/tlog-proof@v1</c> text.</param>
public sealed record EvidenceRecord(string Type, long Index, byte[] Leaf, string Proof);

/// <summary>
/// <c>meshbus-evidence/v1</c> (docs/evidence.md): <c>{"format","intentId","grant","records":[{type,index,leaf,proof}],
/// "trust":{"logs":{origin:vkey},"witnesses":{name:vkey},"jwks":{...}}}</c>.
/// </summary>
/// <param name="IntentId">The intent.</param>
/// <param name="Grant">The grant JWS, or null (denied intents).</param>
/// <param name="Records">The records, each with its proof.</param>
/// <param name="Logs">Log verifier keys by origin.</param>
/// <param name="Witnesses">Witness verifier keys by name.</param>
/// <param name="Jwks">The JWKS of the grant keys (RFC 7517), or null.</param>
public sealed record EvidenceBundle(
    string IntentId,
    string? Grant,
    IReadOnlyList<EvidenceRecord> Records,
    IReadOnlyDictionary<string, string> Logs,
    IReadOnlyDictionary<string, string> Witnesses,
    JsonObject? Jwks)
{
    /// <summary>The format name.</summary>
    public const string Format = "meshbus-evidence/v1";

    /// <summary>Largest bundle accepted, in bytes.</summary>
    public const int MaxBytes = 16 * 1024 * 1024;

    /// <summary>
    /// The other domains' bundles of the same intent (optional member <c>peers</c>): each a complete bundle of that
    /// domain's log, verified on its own against the same pinned roots. A peer bundle has no peers of its own.
    /// </summary>
    public IReadOnlyList<EvidenceBundle> Peers { get; init; } = [];

    /// <summary>The JSON text (indented).</summary>
    public string ToJson() => ToNode().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    private JsonObject ToNode()
    {
        var logs = new JsonObject();
        foreach (var (k, v) in Logs)
        {
            logs[k] = v;
        }

        var witnesses = new JsonObject();
        foreach (var (k, v) in Witnesses)
        {
            witnesses[k] = v;
        }

        var records = new JsonArray();
        foreach (var r in Records)
        {
            records.Add(new JsonObject
            {
                ["type"] = r.Type,
                ["index"] = r.Index,
                ["leaf"] = Convert.ToBase64String(r.Leaf),
                ["proof"] = r.Proof,
            });
        }

        var doc = new JsonObject
        {
            ["format"] = Format,
            ["intentId"] = IntentId,
            ["grant"] = Grant,
            ["records"] = records,
            ["trust"] = new JsonObject
            {
                ["logs"] = logs,
                ["witnesses"] = witnesses,
                ["jwks"] = Jwks?.DeepClone(),
            },
        };
        if (Peers.Count > 0)
        {
            doc["peers"] = new JsonArray([.. Peers.Select(p => (JsonNode)p.ToNode())]);
        }

        return doc;
    }

    /// <summary>Parses a bundle; throws <see cref="FormatException"/> with the reason.</summary>
    public static EvidenceBundle Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (json.Length > MaxBytes)
        {
            throw new FormatException("the evidence bundle is too large");
        }

        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new FormatException("the evidence bundle is not JSON: " + e.Message);
        }

        return FromNode(root, nested: false);
    }

    private static EvidenceBundle FromNode(JsonNode? root, bool nested)
    {
        if (root is not JsonObject o || Str(o, "format") != Format)
        {
            throw new FormatException($"not a {Format} bundle");
        }

        var peers = new List<EvidenceBundle>();
        if (o["peers"] is JsonArray peerArray)
        {
            if (nested)
            {
                throw new FormatException("a peer bundle cannot hold peers of its own");
            }

            peers.AddRange(peerArray.Select(p => FromNode(p, nested: true)));
        }
        else if (o["peers"] is not null)
        {
            throw new FormatException("peers must be an array");
        }

        var records = new List<EvidenceRecord>();
        if (o["records"] is not JsonArray arr)
        {
            throw new FormatException("records must be an array");
        }

        foreach (var item in arr)
        {
            if (item is not JsonObject r)
            {
                throw new FormatException("a record must be an object");
            }

            byte[] leaf;
            try
            {
                leaf = Convert.FromBase64String(Str(r, "leaf") ?? throw new FormatException("a record has no leaf"));
            }
            catch (FormatException e)
            {
                throw new FormatException("a record leaf is not base64: " + e.Message);
            }

            var index = r["index"] is JsonValue iv && iv.TryGetValue<long>(out var n) ? n : throw new FormatException("a record index must be an integer");
            records.Add(new EvidenceRecord(
                Str(r, "type") ?? throw new FormatException("a record has no type"),
                index,
                leaf,
                Str(r, "proof") ?? throw new FormatException("a record has no proof")));
        }

        var trust = o["trust"] as JsonObject ?? throw new FormatException("trust must be an object");
        return new EvidenceBundle(
            Str(o, "intentId") ?? throw new FormatException("intentId is missing"),
            Str(o, "grant"),
            records,
            Map(trust, "logs"),
            Map(trust, "witnesses"),
            trust["jwks"] is JsonObject j ? (JsonObject)j.DeepClone() : null)
        {
            Peers = peers,
        };
    }

    private static string? Str(JsonObject o, string name) => o[name] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => throw new FormatException($"'{name}' must be a string"),
    };

    private static Dictionary<string, string> Map(JsonObject trust, string name)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (trust[name] is null)
        {
            return result;
        }

        if (trust[name] is not JsonObject m)
        {
            throw new FormatException($"trust.{name} must be an object");
        }

        foreach (var (k, v) in m)
        {
            result[k] = v is JsonValue sv && sv.TryGetValue<string>(out var s) ? s : throw new FormatException($"trust.{name}.{k} must be a string");
        }

        return result;
    }
}
