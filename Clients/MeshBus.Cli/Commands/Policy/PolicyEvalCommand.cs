using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using MeshBus.Policy.Cel;

namespace MeshBus.Cli.Commands.Policy;

/// <summary>
/// <c>meshbus policy eval EXPR [--vars FILE|-]</c>: evaluates a CEL expression over JSON variables, like <c>opa eval</c>.
/// Prints <c>{"value": ...}</c> (exit 0) or <c>{"error": "..."}</c> (exit 2) for parse, type and evaluation errors alike.
/// </summary>
public sealed class PolicyEvalCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "policy eval";

    /// <inheritdoc/>
    public override string Summary => "Evaluate a CEL expression over JSON variables";

    /// <inheritdoc/>
    public override string Usage => """
        Usage: meshbus policy eval EXPR [--vars FILE|-]

          EXPR         a CEL expression, e.g. "intent.action == 'read' && agent.level >= 2"
          --vars FILE  a JSON object whose top-level keys are the variables (declared dyn); '-' reads stdin

        Prints {"value": ...} and exits 0, or {"error": "..."} and exits 2 (parse, type or evaluation error).
        """;

    /// <inheritdoc/>
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(console);
        var varsPath = args.Option("vars");
        args.RejectUnknown();
        if (args.Positionals.Count != 1)
        {
            throw new CliUsageException(args.Positionals.Count == 0 ? "missing EXPR" : "give EXPR as one argument (quote it)");
        }

        var expression = args.Positionals[0];
        var values = new Dictionary<string, CelValue>(StringComparer.Ordinal);
        if (varsPath is not null)
        {
            var text = await console.ReadTextAsync(varsPath, cancellationToken);
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    return WriteError(console, "--vars must be a JSON object whose keys are the variable names");
                }

                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    values[p.Name] = CelValue.FromJson(p.Value);
                }
            }
            catch (JsonException e)
            {
                return WriteError(console, $"--vars is not valid JSON: {e.Message}");
            }
        }

        CelValue result;
        try
        {
            var env = CelEnvironment.Create(values.Keys.ToDictionary(k => k, _ => CelType.Dyn, StringComparer.Ordinal));
            result = env.Compile(expression).Evaluate(CelActivation.Create(values));
        }
        catch (CelCompileException e)
        {
            return WriteError(console, e.Message);
        }

        if (result.IsError)
        {
            return WriteError(console, result.ErrorMessage!);
        }

        console.Out.WriteLine("{\"value\": " + result.ToJson() + "}");
        return 0;
    }

    private static int WriteError(CliConsole console, string message)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("error", message);
            writer.WriteEndObject();
        }

        console.Out.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
        return 2;
    }
}
