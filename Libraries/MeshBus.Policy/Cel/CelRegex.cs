using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;

namespace MeshBus.Policy.Cel;

/// <summary>
/// <c>matches</c> with RE2 semantics: a non-backtracking engine (linear time), RE2-only syntax translated, lookarounds,
/// backreferences and atomic groups rejected, and a time limit per match.
/// </summary>
internal static class CelRegex
{
    private static readonly ConcurrentDictionary<(string, TimeSpan), Regex> Cache = new();

    /// <summary>Compiles a pattern; returns null and a reason when it is not an RE2 pattern.</summary>
    public static Regex? TryCompile(string pattern, TimeSpan timeout, out string? error)
    {
        if (Cache.TryGetValue((pattern, timeout), out var cached))
        {
            error = null;
            return cached;
        }

        error = Validate(pattern, out var translated);
        if (error is not null)
        {
            return null;
        }

        try
        {
            var regex = new Regex(translated, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant, timeout);
            if (Cache.Count < 1000)
            {
                Cache.TryAdd((pattern, timeout), regex);
            }

            return regex;
        }
        catch (ArgumentException e)
        {
            error = $"invalid regular expression '{pattern}': {e.Message}";
            return null;
        }
        catch (NotSupportedException e)
        {
            error = $"regular expression '{pattern}' is not RE2: {e.Message}";
            return null;
        }
    }

    public static CelValue Match(Regex regex, string input)
    {
        try
        {
            return CelValue.Of(regex.IsMatch(input));
        }
        catch (RegexMatchTimeoutException)
        {
            return CelValue.Error("regular expression match timed out");
        }
    }

    public static CelValue Matches(CelValue s, CelValue pattern, TimeSpan timeout)
    {
        if (Runtime.Propagate(s, pattern) is { } err)
        {
            return err;
        }

        if (s is not CelString str || pattern is not CelString p)
        {
            return Runtime.NoOverload("matches", s, pattern);
        }

        var regex = TryCompile(p.Value, timeout, out var error);
        return regex is null ? CelValue.Error(error!) : Match(regex, str.Value);
    }

    private static string? Validate(string pattern, out string translated)
    {
        var sb = new StringBuilder(pattern.Length);
        translated = pattern;
        var inClass = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                var n = pattern[i + 1];
                if (!inClass && char.IsAsciiDigit(n) && n != '0')
                {
                    return $"regular expression '{pattern}' uses a backreference, which RE2 does not support";
                }

                if (n is 'k' or 'G' or 'Z')
                {
                    return $"regular expression '{pattern}' uses '\\{n}', which RE2 does not support";
                }

                sb.Append(c).Append(n);
                i++;
                continue;
            }

            if (inClass)
            {
                if (c == ']')
                {
                    inClass = false;
                }

                sb.Append(c);
                continue;
            }

            if (c == '[')
            {
                inClass = true;
                sb.Append(c);
                if (i + 1 < pattern.Length && pattern[i + 1] == '^')
                {
                    sb.Append('^');
                    i++;
                }

                if (i + 1 < pattern.Length && pattern[i + 1] == ']')
                {
                    sb.Append("\\]");
                    i++;
                }

                continue;
            }

            if (c == '(' && i + 1 < pattern.Length && pattern[i + 1] == '?')
            {
                var rest = pattern.AsSpan(i + 2);
                if (rest.StartsWith("=") || rest.StartsWith("!") || rest.StartsWith("<=") || rest.StartsWith("<!"))
                {
                    return $"regular expression '{pattern}' uses a lookaround, which RE2 does not support";
                }

                if (rest.StartsWith(">"))
                {
                    return $"regular expression '{pattern}' uses an atomic group, which RE2 does not support";
                }

                if (rest.StartsWith("P<"))
                {
                    // RE2's (?P<name>re) is .NET's (?<name>re).
                    sb.Append("(?<");
                    i += 3;
                    continue;
                }
            }

            if ((c is '+' or '*' or '?' or '}') && i + 1 < pattern.Length && pattern[i + 1] == '+')
            {
                return $"regular expression '{pattern}' uses a possessive quantifier, which RE2 does not support";
            }

            sb.Append(c);
        }

        translated = sb.ToString();
        return null;
    }
}
