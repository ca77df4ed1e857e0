using System.Reflection;

namespace MeshBus.Cli;

/// <summary>Dispatches <c>meshbus WORDS... [options]</c> to the command whose name is the longest matching prefix.</summary>
public static class CommandLineApp
{
    private static readonly Lazy<IReadOnlyList<CliCommand>> Discovered = new(() =>
        typeof(CommandLineApp).Assembly.GetTypes()
            .Where(t => t is { IsAbstract: false } && typeof(CliCommand).IsAssignableFrom(t) && t.GetConstructor(Type.EmptyTypes) is not null)
            .Select(t => (CliCommand)Activator.CreateInstance(t)!)
            .OrderBy(c => c.Name, StringComparer.Ordinal)
            .ToList());

    /// <summary>Every command, by name.</summary>
    public static IReadOnlyList<CliCommand> Commands => Discovered.Value;

    /// <summary>Runs the CLI with the given arguments and console; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            PrintHelp(console.Out);
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0] == "--version")
        {
            console.Out.WriteLine("meshbus " + (typeof(CommandLineApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev"));
            return 0;
        }

        var words = args.TakeWhile(a => !a.StartsWith('-')).ToArray();
        CliCommand? command = null;
        var used = 0;
        for (var n = words.Length; n > 0 && command is null; n--)
        {
            var name = string.Join(' ', words.Take(n));
            command = Commands.FirstOrDefault(c => c.Name == name);
            used = n;
        }

        if (command is null)
        {
            console.Error.WriteLine($"meshbus: unknown command '{string.Join(' ', words)}'. Run 'meshbus --help' for the list.");
            return 2;
        }

        try
        {
            var parsed = CliArgs.Parse(args.Skip(used), FlagsOf(command));
            if (parsed.HelpRequested)
            {
                console.Out.WriteLine(command.Usage);
                return 0;
            }

            return await command.RunAsync(parsed, console, cancellationToken);
        }
        catch (CliUsageException e)
        {
            console.Error.WriteLine($"meshbus {command.Name}: {e.Message}");
            console.Error.WriteLine(command.Usage);
            return 2;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            console.Error.WriteLine($"meshbus {command.Name}: cancelled");
            return 130;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidDataException or System.Text.Json.JsonException or ArgumentException or InvalidOperationException or Microsoft.Extensions.Options.OptionsValidationException
            or System.Data.Common.DbException)
        {
            // DbException: a file that is not a SQLite database, a PostgreSQL server that cannot be reached.
            // Errors a user can act on: print the reason, never a stack trace.
            console.Error.WriteLine($"meshbus {command.Name}: error: {e.Message}");
            return 2;
        }
    }

    private static string[] FlagsOf(CliCommand command) =>
        command is IHasFlags f ? f.Flags : [];

    private static void PrintHelp(TextWriter output)
    {
        output.WriteLine("meshbus — governance mesh for autonomous workloads");
        output.WriteLine();
        output.WriteLine("Usage: meshbus COMMAND [options]      (meshbus COMMAND --help for details)");
        output.WriteLine();
        var width = Commands.Count == 0 ? 0 : Commands.Max(c => c.Name.Length);
        foreach (var c in Commands)
        {
            output.WriteLine($"  {c.Name.PadRight(width)}  {c.Summary}");
        }
    }
}

/// <summary>Implemented by commands that take options without a value (<c>--json</c>).</summary>
public interface IHasFlags
{
    /// <summary>Names of the options that take no value.</summary>
    string[] Flags { get; }
}
