using System.Text.Json;
using MeshBus.Trust;

namespace MeshBus.Policy.Bundles;

/// <summary>
/// RFC 8785 canonical form of a policy document without its unsigned top-level members (<c>digest</c>,
/// <c>signatures</c>). The canonicalization itself is MeshBus's one implementation, <see cref="Canonical"/> in
/// MeshBus.Trust (integers within ±2^53 only, duplicate members refused), so intents, grants and policies agree.
/// </summary>
internal static class PolicyCanonicalJson
{
    /// <summary>Canonical UTF-8 bytes of <paramref name="element"/>, leaving out the top-level members named in <paramref name="omitTopLevel"/>.</summary>
    /// <exception cref="FormatException">A number outside the subset, a duplicate member or a lone surrogate.</exception>
    public static byte[] Canonicalize(JsonElement element, params string[] omitTopLevel)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            if (element.ValueKind == JsonValueKind.Object && omitTopLevel.Length > 0)
            {
                writer.WriteStartObject();
                foreach (var member in element.EnumerateObject())
                {
                    if (!omitTopLevel.Contains(member.Name, StringComparer.Ordinal))
                    {
                        member.WriteTo(writer);
                    }
                }

                writer.WriteEndObject();
            }
            else
            {
                element.WriteTo(writer);
            }
        }

        // Re-read strictly (duplicate members are kept by the writer above and refused here).
        return Canonical.Json(buffer.ToArray().AsSpan());
    }
}
