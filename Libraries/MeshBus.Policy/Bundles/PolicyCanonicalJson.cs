using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MeshBus.Policy.Bundles;

/// <summary>
/// RFC 8785 (JSON Canonicalization Scheme) for policy documents: members sorted by their names' UTF-16 code units,
/// no insignificant whitespace, the minimal string escapes of ECMAScript's <c>JSON.stringify</c>. Numbers are limited
/// to integers within ±2^53 (the subset MeshBus documents use), whose ECMAScript form is their decimal digits; anything
/// else is refused rather than canonicalized differently from other implementations. Duplicate member names are refused.
/// Internal and self-contained so that it can be swapped for the shared canonicalizer of MeshBus.Trust.
/// </summary>
internal static class PolicyCanonicalJson
{
    private const long MaxSafeInteger = 9_007_199_254_740_992; // 2^53

    /// <summary>Canonical UTF-8 bytes of <paramref name="element"/>, leaving out the top-level members named in <paramref name="omitTopLevel"/>.</summary>
    public static byte[] Canonicalize(JsonElement element, params string[] omitTopLevel)
    {
        var sb = new StringBuilder(1024);
        Write(sb, element, omitTopLevel);
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static void Write(StringBuilder sb, JsonElement element, string[]? omit)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var members = new List<(string Name, JsonElement Value)>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                foreach (var p in element.EnumerateObject())
                {
                    if (!seen.Add(p.Name))
                    {
                        throw new FormatException($"duplicate member name \"{p.Name}\"");
                    }

                    if (omit is not null && Array.IndexOf(omit, p.Name) >= 0)
                    {
                        continue;
                    }

                    members.Add((p.Name, p.Value));
                }

                // string.CompareOrdinal compares UTF-16 code units, which is what RFC 8785 §3.2.3 asks for.
                members.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
                sb.Append('{');
                for (var i = 0; i < members.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    WriteString(sb, members[i].Name);
                    sb.Append(':');
                    Write(sb, members[i].Value, null);
                }

                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                var first = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }

                    first = false;
                    Write(sb, item, null);
                }

                sb.Append(']');
                break;
            case JsonValueKind.String:
                WriteString(sb, element.GetString()!);
                break;
            case JsonValueKind.Number:
                if (!element.TryGetInt64(out var n) || n > MaxSafeInteger || n < -MaxSafeInteger)
                {
                    throw new FormatException($"number {element.GetRawText()} is not an integer within ±2^53");
                }

                sb.Append(n.ToString(CultureInfo.InvariantCulture));
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            case JsonValueKind.Null:
                sb.Append("null");
                break;
            default:
                throw new FormatException($"unexpected JSON value kind {element.ValueKind}");
        }
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\b':
                    sb.Append("\\b");
                    break;
                case '\f':
                    sb.Append("\\f");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                    {
                        sb.Append(c).Append(s[++i]);
                    }
                    else if (char.IsSurrogate(c))
                    {
                        // A lone surrogate has no UTF-8 form: refuse instead of silently replacing it.
                        throw new FormatException("string contains a lone UTF-16 surrogate");
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
