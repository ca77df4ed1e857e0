using MeshBus.Ledger;
using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Lineage;

/// <summary><c>meshbus lineage verify</c>: recomputes the whole tree from the store and checks every stored node and checkpoint.</summary>
public sealed class LineageVerifyCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "lineage verify";

    /// <inheritdoc/>
    public override string Summary => "Audit a lineage log: recompute the tree and check it against every stored checkpoint";

    /// <inheritdoc/>
    public override string Usage => $"""
        Usage: meshbus lineage verify (--store PATH | --postgres CS) [--domain-dir DIR]
        {LineageStoreOptions.Usage}
          --domain-dir DIR    the domain directory: checkpoint signatures are checked with its log keys
        Exit 0 when the log is intact, 1 with one line per problem (a changed entry is named by its index).
        """;

    /// <inheritdoc/>
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Option("domain-dir");
        await using var log = await LineageStoreOptions.OpenAsync(args, cancellationToken);
        args.RejectUnknown();
        string? origin = null;
        IReadOnlyList<VerifierKey>? keys = null;
        if (dir is not null)
        {
            var domain = DomainKeys.Load(dir);
            origin = LineageNames.Origin(domain.Domain);
            keys = domain.KeySet.Keys.Where(k => k.Usage == KeyUsage.Log).Select(k => VerifierKey.Create(origin, k.PublicKeyBytes())).ToList();
        }

        var report = await LineageAudit.RunAsync(log, origin, keys, cancellationToken);
        foreach (var f in report.Findings)
        {
            console.Out.WriteLine(f.Index is { } i ? $"FAIL index {i}: {f.Message}" : $"FAIL {f.Message}");
        }

        console.Out.WriteLine(report.Ok
            ? $"PASS {report.Entries} entries, {report.Checkpoints} checkpoints" + (keys is null ? " (signatures not checked: no --domain-dir)" : ", checkpoint signatures verified")
            : $"FAIL {report.Findings.Count} problem(s) in {report.Entries} entries, {report.Checkpoints} checkpoints");
        return report.Ok ? 0 : 1;
    }
}
