using MeshBus.Policy.Tooling;

namespace MeshBus.Cli.Commands.Policy;

/// <summary><c>meshbus policy test DIR</c>: runs every <c>*.test.json</c> under DIR, like <c>opa test</c>.</summary>
public sealed class PolicyTestCommand : CliCommand
{
    /// <inheritdoc />
    public override string Name => "policy test";

    /// <inheritdoc />
    public override string Summary => "Run policy test files (*.test.json): inputs with expected decisions and matched rules";

    /// <inheritdoc />
    public override string Usage => """
        Usage: meshbus policy test DIR

        Runs every *.test.json file under DIR (recursively). A test file names one or more bundles (paths relative to
        it) and cases: an input, the expected decision (allow or deny), and optionally the reason, the matched rules and
        the lease bound. Prints PASS or FAIL per case, then a summary. See docs/policy.md, "Test files".

        Exit codes: 0 every case passed, 1 a case failed (or a test file or bundle is invalid, or none was found),
        2 usage error or DIR does not exist.
        """;

    /// <inheritdoc />
    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        args.RejectUnknown();
        if (args.Positionals.Count != 1)
        {
            throw new CliUsageException("give exactly one directory");
        }

        var dir = args.Positionals[0];
        if (!Directory.Exists(dir))
        {
            console.Error.WriteLine($"meshbus policy test: no such directory: {dir}");
            return Task.FromResult(2);
        }

        var results = PolicyTestRunner.RunDirectory(dir);
        if (results.Count == 0)
        {
            console.Out.WriteLine($"FAIL no *{PolicyTestRunner.TestFileSuffix} files under {dir}");
            return Task.FromResult(1);
        }

        foreach (var r in results)
        {
            var what = r.Case.Length == 0 ? r.File : $"{r.File}: {r.Case}";
            console.Out.WriteLine(r.Passed ? $"PASS {what}" : $"FAIL {what}: {r.Message}");
        }

        var failed = results.Count(r => !r.Passed);
        console.Out.WriteLine(failed == 0
            ? $"PASS: {results.Count}/{results.Count}"
            : $"FAIL: {failed}/{results.Count} failed");
        return Task.FromResult(failed == 0 ? 0 : 1);
    }
}
