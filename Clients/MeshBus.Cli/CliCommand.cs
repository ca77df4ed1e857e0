namespace MeshBus.Cli;

/// <summary>
/// One `meshbus` sub-command. Commands are discovered by reflection (every non-abstract subclass with a public
/// parameterless constructor), so adding a command is adding one file.
/// </summary>
public abstract class CliCommand
{
    /// <summary>The words that select the command, e.g. <c>"proof verify"</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One line for <c>meshbus --help</c>.</summary>
    public abstract string Summary { get; }

    /// <summary>The full usage text printed by <c>meshbus NAME --help</c> and on a usage error.</summary>
    public abstract string Usage { get; }

    /// <summary>Runs the command. Returns the process exit code (0 success, 1 check failed, 2 usage or input error).</summary>
    public abstract Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken);
}

/// <summary>Where a command writes; tests capture it.</summary>
public sealed class CliConsole(TextWriter output, TextWriter error, TextReader input)
{
    /// <summary>Standard output.</summary>
    public TextWriter Out { get; } = output;

    /// <summary>Standard error.</summary>
    public TextWriter Error { get; } = error;

    /// <summary>Standard input (for <c>-</c> file arguments).</summary>
    public TextReader In { get; } = input;

    /// <summary>The process console.</summary>
    public static CliConsole System => new(Console.Out, Console.Error, Console.In);

    /// <summary>Reads a file argument; <c>-</c> reads standard input.</summary>
    public async Task<string> ReadTextAsync(string path, CancellationToken cancellationToken) =>
        path == "-" ? await In.ReadToEndAsync(cancellationToken) : await File.ReadAllTextAsync(path, cancellationToken);

    /// <summary>
    /// As <see cref="ReadTextAsync"/>, but an unreadable file is reported on standard error as
    /// <c>meshbus COMMAND: cannot read PATH: reason</c> and gives null (the command then exits 2).
    /// </summary>
    public async Task<string?> TryReadTextAsync(string path, string command, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadTextAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await Error.WriteLineAsync($"meshbus {command}: cannot read {path}: {e.Message}");
            return null;
        }
    }
}

/// <summary>A usage error: printed with the command's usage, exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);
