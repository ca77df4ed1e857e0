using MeshBus.Policy.Bundles;
using MeshBus.Policy.Tooling;

namespace MeshBus.Cli.Commands.Policy;

/// <summary><c>meshbus policy lint FILE</c>: every problem of a bundle at once; exit 0 clean, 1 problems, 2 unreadable.</summary>
public sealed class PolicyLintCommand : CliCommand
{
    /// <inheritdoc />
    public override string Name => "policy lint";

    /// <inheritdoc />
    public override string Summary => "Check a policy bundle: structure, selectors, digest and every CEL condition";

    /// <inheritdoc />
    public override string Usage => """
        Usage: meshbus policy lint FILE

        Reads a meshbus-policy/v1 bundle (FILE, or - for standard input) and lists every problem: unknown or missing
        members, malformed selectors, duplicate rule ids, a digest that does not match the content, and conditions that
        do not parse or type-check against the input schema (with rule id, position and line:column). Signatures are not
        checked here (they need the domain's keys). See docs/policy.md.

        Exit codes: 0 no problem, 1 problems found (all listed), 2 usage error or unreadable file.
        """;

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        args.RejectUnknown();
        if (args.Positionals.Count != 1)
        {
            throw new CliUsageException("give exactly one bundle file");
        }

        var file = args.Positionals[0];
        if (await console.TryReadTextAsync(file, "policy lint", cancellationToken) is not { } json)
        {
            return 2;
        }

        var errors = PolicyLint.Check(json);
        if (errors.Count > 0)
        {
            foreach (var e in errors)
            {
                console.Out.WriteLine($"{file}: {Kind(e.Kind)}: {e}");
            }

            console.Out.WriteLine($"{file}: {errors.Count} problem{(errors.Count == 1 ? "" : "s")}");
            return 1;
        }

        var bundle = PolicyBundle.Parse(json);
        console.Out.WriteLine($"{file}: ok ({PolicyBundle.ScopeName(bundle.Scope)} policy of {bundle.Domain}, epoch {bundle.Epoch}, {bundle.Rules.Count} rule{(bundle.Rules.Count == 1 ? "" : "s")}, {bundle.Digest})");
        return 0;
    }

    private static string Kind(PolicyBundleErrorKind kind) => kind switch
    {
        PolicyBundleErrorKind.Syntax => "syntax",
        PolicyBundleErrorKind.Schema => "schema",
        PolicyBundleErrorKind.DuplicateRule => "duplicate-rule",
        PolicyBundleErrorKind.Selector => "selector",
        PolicyBundleErrorKind.Condition => "condition",
        PolicyBundleErrorKind.DigestMismatch => "digest",
        PolicyBundleErrorKind.Signature => "signature",
        PolicyBundleErrorKind.EpochRollback => "epoch",
        PolicyBundleErrorKind.WrongScope => "scope",
        _ => kind.ToString(),
    };
}
