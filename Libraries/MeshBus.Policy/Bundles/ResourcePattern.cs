namespace MeshBus.Policy.Bundles;

/// <summary>
/// A resource glob of a match selector: <c>*</c> matches any run of characters without <c>/</c> (one path segment or
/// part of one), <c>**</c> matches any run of characters including <c>/</c>; every other character matches itself
/// (case-sensitive, no escapes). <c>k8s://prod/*</c> matches <c>k8s://prod/web</c> but not <c>k8s://prod/web/pods</c>;
/// <c>k8s://prod/**</c> matches both. Matching is linear in the resource length (no backtracking blow-up).
/// </summary>
public sealed class ResourcePattern
{
    /// <summary>The longest pattern accepted.</summary>
    public const int MaxLength = 1024;

    private readonly Token[] _tokens;

    private ResourcePattern(string text, Token[] tokens)
    {
        Text = text;
        _tokens = tokens;
        LiteralPrefix = tokens.Length > 0 && tokens[0].Kind == TokenKind.Literal ? tokens[0].Literal! : string.Empty;
    }

    private enum TokenKind
    {
        Literal,
        Star,
        DoubleStar,
    }

    /// <summary>The pattern as written.</summary>
    public string Text { get; }

    /// <summary>The literal text before the first wildcard (every matching resource starts with it).</summary>
    public string LiteralPrefix { get; }

    /// <summary>Parses a pattern; returns null and a reason when it is malformed (empty, too long, <c>***</c>, control characters).</summary>
    public static ResourcePattern? TryParse(string text, out string? error)
    {
        error = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "a resource pattern must not be empty";
            return null;
        }

        if (text.Length > MaxLength)
        {
            error = $"a resource pattern is at most {MaxLength} characters";
            return null;
        }

        if (text.Contains("***", StringComparison.Ordinal))
        {
            error = $"'{text}': '***' is not a pattern (use '*' within a segment or '**' across segments)";
            return null;
        }

        foreach (var c in text)
        {
            if (char.IsControl(c) || char.IsWhiteSpace(c))
            {
                error = $"'{text}': resource patterns may not contain whitespace or control characters";
                return null;
            }
        }

        var tokens = new List<Token>();
        var i = 0;
        while (i < text.Length)
        {
            if (text[i] == '*')
            {
                if (i + 1 < text.Length && text[i + 1] == '*')
                {
                    tokens.Add(new Token(TokenKind.DoubleStar, null));
                    i += 2;
                }
                else
                {
                    tokens.Add(new Token(TokenKind.Star, null));
                    i++;
                }
            }
            else
            {
                var end = text.IndexOf('*', i);
                if (end < 0)
                {
                    end = text.Length;
                }

                tokens.Add(new Token(TokenKind.Literal, text[i..end]));
                i = end;
            }
        }

        return new ResourcePattern(text, [.. tokens]);
    }

    /// <summary>Whether <paramref name="resource"/> matches the whole pattern.</summary>
    public bool IsMatch(string resource)
    {
        var tokens = _tokens;
        if (tokens.Length == 1 && tokens[0].Kind == TokenKind.Literal)
        {
            return string.Equals(resource, tokens[0].Literal, StringComparison.Ordinal);
        }

        if (!resource.StartsWith(LiteralPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        // Set of reachable positions in the resource after each token: O(tokens × length), no backtracking.
        var n = resource.Length;
        Span<bool> reach = n < 512 ? stackalloc bool[n + 1] : new bool[n + 1];
        Span<bool> next = n < 512 ? stackalloc bool[n + 1] : new bool[n + 1];
        reach.Clear();
        reach[0] = true;
        foreach (var t in tokens)
        {
            next.Clear();
            var any = false;
            switch (t.Kind)
            {
                case TokenKind.Literal:
                    var lit = t.Literal!;
                    for (var p = 0; p + lit.Length <= n; p++)
                    {
                        if (reach[p] && resource.AsSpan(p, lit.Length).SequenceEqual(lit))
                        {
                            next[p + lit.Length] = true;
                            any = true;
                        }
                    }

                    break;
                case TokenKind.Star:
                    var open = false;
                    for (var p = 0; p <= n; p++)
                    {
                        open |= reach[p];
                        if (open)
                        {
                            next[p] = true;
                            any = true;
                        }

                        if (p < n && resource[p] == '/')
                        {
                            open = false;
                        }
                    }

                    break;
                case TokenKind.DoubleStar:
                    var from = reach.IndexOf(true);
                    if (from >= 0)
                    {
                        next[from..].Fill(true);
                        any = true;
                    }

                    break;
            }

            if (!any)
            {
                return false;
            }

            var swap = reach;
            reach = next;
            next = swap;
        }

        return reach[n];
    }

    /// <inheritdoc />
    public override string ToString() => Text;

    private readonly record struct Token(TokenKind Kind, string? Literal);
}
