using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace MeshBus.Trust;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS) for the MeshBus subset: numbers must be integers within ±2^53
/// (they then serialize as plain decimal integers, as JCS requires); any other number is rejected with
/// <see cref="StrictJsonException"/>, so canonical bytes never depend on floating-point formatting.
/// </summary>
public static class Canonical
{
    /// <summary>The largest magnitude of an accepted number (2^53).</summary>
    public const long MaxSafeInteger = 9007199254740992;

    private static readonly JsonSerializerOptions SerializerOptions = new(JsonSerializerDefaults.Web);

    /// <summary>The canonical UTF-8 bytes of a JSON value.</summary>
    public static byte[] Json(JsonElement value)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(value, buffer, 0);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The canonical UTF-8 bytes of an object serialized with web defaults (camelCase names).</summary>
    public static byte[] Json(object value) => value is JsonElement e ? Json(e) : Json(JsonSerializer.SerializeToElement(value, value.GetType(), SerializerOptions));

    /// <summary>Canonicalizes JSON text, rejecting duplicate members (<see cref="StrictJson"/>).</summary>
    public static byte[] Json(ReadOnlySpan<byte> utf8Json) => Json(StrictJson.Parse(utf8Json));

    /// <summary><c>sha256:&lt;lowercase hex&gt;</c> of bytes.</summary>
    public static string Sha256Digest(ReadOnlySpan<byte> bytes) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static void Write(JsonElement value, ArrayBufferWriter<byte> output, int depth)
    {
        if (depth > StrictJson.DefaultMaxDepth)
        {
            throw new StrictJsonException("JSON nested too deeply");
        }

        switch (value.ValueKind)
        {
            case JsonValueKind.Null:
                Append(output, "null");
                break;
            case JsonValueKind.True:
                Append(output, "true");
                break;
            case JsonValueKind.False:
                Append(output, "false");
                break;
            case JsonValueKind.Number:
                Append(output, CanonicalInteger(value).ToString(CultureInfo.InvariantCulture));
                break;
            case JsonValueKind.String:
                WriteString(value.GetString()!, output);
                break;
            case JsonValueKind.Array:
                {
                    Append(output, "[");
                    var first = true;
                    foreach (var item in value.EnumerateArray())
                    {
                        if (!first)
                        {
                            Append(output, ",");
                        }

                        first = false;
                        Write(item, output, depth + 1);
                    }

                    Append(output, "]");
                    break;
                }

            case JsonValueKind.Object:
                {
                    var members = new List<(string Name, JsonElement Value)>();
                    var names = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var p in value.EnumerateObject())
                    {
                        if (!names.Add(p.Name))
                        {
                            throw new StrictJsonException($"duplicate JSON member '{p.Name}'");
                        }

                        members.Add((p.Name, p.Value));
                    }

                    // JCS: sort by the UTF-16 code units of the names (ordinal comparison of .NET strings).
                    members.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
                    Append(output, "{");
                    for (var i = 0; i < members.Count; i++)
                    {
                        if (i > 0)
                        {
                            Append(output, ",");
                        }

                        WriteString(members[i].Name, output);
                        Append(output, ":");
                        Write(members[i].Value, output, depth + 1);
                    }

                    Append(output, "}");
                    break;
                }

            default:
                throw new StrictJsonException($"unsupported JSON value kind {value.ValueKind}");
        }
    }

    private static long CanonicalInteger(JsonElement number)
    {
        if (!number.TryGetDecimal(out var d) || decimal.Truncate(d) != d || d > MaxSafeInteger || d < -MaxSafeInteger)
        {
            throw new StrictJsonException($"number {number.GetRawText()} is not an integer within ±2^53 (send it as a string)");
        }

        return (long)d;
    }

    private static void WriteString(string s, ArrayBufferWriter<byte> output)
    {
        var sb = new StringBuilder(s.Length + 2);
        sb.Append('"');
        for (var i = 0; i < s.Length; i++)
        {
            var c = s[i];
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else if (char.IsHighSurrogate(c))
                    {
                        if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                        {
                            throw new StrictJsonException("string contains a lone surrogate");
                        }

                        sb.Append(c).Append(s[++i]);
                    }
                    else if (char.IsLowSurrogate(c))
                    {
                        throw new StrictJsonException("string contains a lone surrogate");
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
        Append(output, sb.ToString());
    }

    private static void Append(ArrayBufferWriter<byte> output, string text)
    {
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        var n = Encoding.UTF8.GetBytes(text, span);
        output.Advance(n);
    }
}
