using Microsoft.Extensions.Options;

namespace MeshBus.Hosting;

/// <summary>
/// Settings read from files, as container secrets are mounted: <c>NAME_FILE=/run/secrets/x</c> sets the setting the
/// variable <c>NAME</c> would (e.g. <c>RabbitMqTransport__Password_FILE</c> sets <c>RabbitMqTransport:Password</c>), so a
/// password never stands in the environment. The file's content is the value, without one trailing line break.
/// </summary>
public static class FileSecrets
{
    /// <summary>The suffix that makes a variable name a file.</summary>
    public const string Suffix = "_FILE";

    /// <summary>
    /// The settings named by <c>*_FILE</c> variables among <paramref name="environment"/>, keyed as configuration keys.
    /// Throws <see cref="OptionsValidationException"/> naming every variable whose file cannot be read, or that is set
    /// beside the plain variable (which of the two is meant would be a guess).
    /// </summary>
    public static IDictionary<string, string?> Read(IReadOnlyDictionary<string, string> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var failures = new List<string>();
        foreach (var (variable, path) in environment.Where(e => e.Key.EndsWith(Suffix, StringComparison.Ordinal) && e.Key.Length > Suffix.Length && e.Key.Contains("__", StringComparison.Ordinal)))
        {
            var plain = variable[..^Suffix.Length];
            if (environment.ContainsKey(plain))
            {
                failures.Add($"{plain} and {variable} are both set; set one of them");
                continue;
            }

            try
            {
                var text = File.ReadAllText(path);
                values[plain.Replace("__", ":", StringComparison.Ordinal)] = text.EndsWith("\r\n", StringComparison.Ordinal) ? text[..^2] : text.TrimEnd('\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                failures.Add($"{variable}: cannot read {path}: {e.Message}");
            }
        }

        if (failures.Count > 0)
        {
            throw new OptionsValidationException(Suffix, typeof(FileSecrets), failures);
        }

        return values;
    }

    /// <summary>The process environment, for <see cref="Read"/>.</summary>
    public static IReadOnlyDictionary<string, string> ProcessEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "", StringComparer.Ordinal);
}
