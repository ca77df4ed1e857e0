using MeshBus.Ledger.Evidence;
using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Proof;

/// <summary><c>meshbus proof verify</c>: checks an evidence bundle offline against pinned roots.</summary>
public sealed class ProofVerifyCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "proof verify";

    /// <inheritdoc/>
    public override string Summary => "Verify an evidence bundle offline against the roots pinned in a trust directory";

    /// <inheritdoc/>
    public override string Usage => """
        Usage: meshbus proof verify FILE --trust DIR [--min-cosignatures K]
          FILE                the bundle (meshbus-evidence/v1), - for standard input
          --trust DIR         pinned roots and key sets, as written by meshbus trust export
          --min-cosignatures K  require K cosignatures of trusted witnesses on every checkpoint, in every domain's
                              part (default 0; --witnesses K is the same)
        One PASS/FAIL line per check; exit 0 only if all pass. Keys in the bundle that do not chain to a pinned root
        print UNTRUSTED ROOTS and exit 1.
        """;

    /// <inheritdoc/>
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var trustDir = args.Required("trust");
        var k = args.Option("min-cosignatures") is not null ? args.Int("min-cosignatures", 0) : args.Int("witnesses", 0);
        args.RejectUnknown();
        if (args.Positionals.Count != 1)
        {
            throw new CliUsageException("give exactly one bundle file");
        }

        if (k < 0)
        {
            throw new CliUsageException("--min-cosignatures is at least 0");
        }

        var file = args.Positionals[0];
        var text = await console.ReadTextAsync(file, cancellationToken);
        var pinned = TrustConfig.LoadDirectory(trustDir);
        EvidenceBundle bundle;
        try
        {
            bundle = EvidenceBundle.Parse(text);
        }
        catch (FormatException e)
        {
            console.Out.WriteLine($"FAIL bundle format: {e.Message}");
            return 1;
        }

        var report = EvidenceVerifier.Verify(bundle, pinned, (int)Math.Min(k, int.MaxValue));
        foreach (var c in report.Checks)
        {
            console.Out.WriteLine((c.Passed ? "PASS " : "FAIL ") + c.Description);
        }

        if (report.UntrustedRoots)
        {
            console.Out.WriteLine("UNTRUSTED ROOTS");
            return 1;
        }

        console.Out.WriteLine(report.Ok ? $"OK evidence of intent {bundle.IntentId} verified" : "FAILED");
        return report.Ok ? 0 : 1;
    }
}
