using System.Text;
using System.Text.Json;

namespace MeshBus.Trust;

/// <summary>
/// Parses JSON that a signature covers: strict UTF-8, no comments or trailing commas, bounded depth and size, and
/// no duplicate object members (which parsers resolve differently, so a signed document could mean two things).
/// </summary>
public static class StrictJson
{
    /// <summary>The default maximum nesting depth.</summary>
    public const int DefaultMaxDepth = 32;

    /// <summary>Parses <paramref name="utf8"/>; throws <see cref="StrictJsonException"/> on any violation.</summary>
    public static JsonElement Parse(ReadOnlySpan<byte> utf8, int maxDepth = DefaultMaxDepth)
    {
        CheckNoDuplicates(utf8, maxDepth);
        try
        {
            using var doc = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { MaxDepth = maxDepth });
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new StrictJsonException("invalid JSON: " + e.Message, e);
        }
    }

    /// <summary>Parses a string as strict JSON.</summary>
    public static JsonElement Parse(string json, int maxDepth = DefaultMaxDepth) => Parse(Encoding.UTF8.GetBytes(json), maxDepth);

    private static void CheckNoDuplicates(ReadOnlySpan<byte> utf8, int maxDepth)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = maxDepth, CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
        var stack = new Stack<HashSet<string>?>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        stack.Push(new HashSet<string>(StringComparer.Ordinal));
                        break;
                    case JsonTokenType.StartArray:
                        stack.Push(null);
                        break;
                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        stack.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var name = reader.GetString()!;
                        if (!stack.Peek()!.Add(name))
                        {
                            throw new StrictJsonException($"duplicate JSON member '{name}'");
                        }

                        break;
                    case JsonTokenType.String:
                        // Unescapes and rejects invalid UTF-8 / lone surrogates.
                        _ = reader.GetString();
                        break;
                }
            }
        }
        catch (JsonException e)
        {
            throw new StrictJsonException("invalid JSON: " + e.Message, e);
        }
        catch (InvalidOperationException e)
        {
            throw new StrictJsonException("invalid JSON string: " + e.Message, e);
        }
    }
}

/// <summary>JSON that is malformed, has duplicate members, or cannot be put in canonical form.</summary>
public sealed class StrictJsonException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public StrictJsonException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public StrictJsonException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
