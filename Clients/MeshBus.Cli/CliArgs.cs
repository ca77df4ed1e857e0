namespace MeshBus.Cli;

/// <summary>
/// Parsed arguments: <c>--name value</c>, <c>--name=value</c>, bare <c>--flag</c> (declared by the caller) and positionals.
/// Unknown options are a usage error, so a typo never silently changes behaviour.
/// </summary>
public sealed class CliArgs
{
    private readonly Dictionary<string, List<string>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _consumed = new(StringComparer.Ordinal);

    private CliArgs(IReadOnlyList<string> positionals) => Positionals = positionals;

    /// <summary>Arguments that are not options, in order.</summary>
    public IReadOnlyList<string> Positionals { get; }

    /// <summary>Whether <c>--help</c> or <c>-h</c> was given.</summary>
    public bool HelpRequested { get; private set; }

    /// <summary>Parses <paramref name="args"/>; <paramref name="flags"/> names options that take no value.</summary>
    public static CliArgs Parse(IEnumerable<string> args, params string[] flags)
    {
        var flagSet = new HashSet<string>(flags, StringComparer.Ordinal);
        var positionals = new List<string>();
        var list = args.ToList();
        var result = new CliArgs(positionals);
        for (var i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (a is "--help" or "-h")
            {
                result.HelpRequested = true;
                continue;
            }

            if (a == "--")
            {
                positionals.AddRange(list.Skip(i + 1));
                break;
            }

            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                var name = a[2..];
                string value;
                var eq = name.IndexOf('=', StringComparison.Ordinal);
                if (eq >= 0)
                {
                    value = name[(eq + 1)..];
                    name = name[..eq];
                }
                else if (flagSet.Contains(name))
                {
                    value = "true";
                }
                else
                {
                    if (i + 1 >= list.Count)
                    {
                        throw new CliUsageException($"option --{name} needs a value");
                    }

                    value = list[++i];
                }

                if (!result._options.TryGetValue(name, out var values))
                {
                    result._options[name] = values = [];
                }

                values.Add(value);
                continue;
            }

            positionals.Add(a);
        }

        return result;
    }

    /// <summary>The last value of an option, or null.</summary>
    public string? Option(string name)
    {
        _consumed.Add(name);
        return _options.TryGetValue(name, out var v) ? v[^1] : null;
    }

    /// <summary>Every value of a repeatable option.</summary>
    public IReadOnlyList<string> Options(string name)
    {
        _consumed.Add(name);
        return _options.TryGetValue(name, out var v) ? v : [];
    }

    /// <summary>The value of a required option; a usage error names it when missing.</summary>
    public string Required(string name) => Option(name) ?? throw new CliUsageException($"missing required option --{name}");

    /// <summary>Whether a flag was given.</summary>
    public bool Flag(string name) => Option(name) is "true" or "";

    /// <summary>An integer option with a default; a usage error when it is not an integer.</summary>
    public long Int(string name, long defaultValue)
    {
        var v = Option(name);
        if (v is null)
        {
            return defaultValue;
        }

        return long.TryParse(v, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new CliUsageException($"--{name} takes an integer, not '{v}'");
    }

    /// <summary>Throws a usage error for any option the command did not read (call after reading them all).</summary>
    public void RejectUnknown()
    {
        var unknown = _options.Keys.Where(k => !_consumed.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new CliUsageException("unknown option" + (unknown.Count > 1 ? "s" : "") + ": " + string.Join(", ", unknown.Select(u => "--" + u)));
        }
    }
}
