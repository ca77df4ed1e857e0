using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Trust;

/// <summary><c>meshbus trust export</c>: what peers and auditors pin.</summary>
public sealed class TrustExportCommand : CliCommand
{
    public override string Name => "trust export";

    public override string Summary => "Export the root vkey and current key set (vkey) or the JWKS (jwks) of a domain";

    public override string Usage => """
        Usage: meshbus trust export --domain-dir DIR --format vkey|jwks [--out DIR]

        Without --out, prints the root verifier key (vkey) or the JWKS of the current public keys (jwks).
        With --out, writes into that directory (created if needed; several domains can share it), where SLUG is the
        domain with every character outside [A-Za-z0-9.-] replaced by '_':
          SLUG.vkey          the root verifier key (one line)            — what a peer or auditor pins
          SLUG.keyset.json   the signed key set                           — verified against SLUG.vkey
          SLUG.jwks.json     (--format jwks) RFC 8037 JWKS of the unrevoked keys, for JOSE libraries
        'meshbus proof verify --trust DIR' and 'meshbus trust add' read these files.
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var format = args.Required("format");
        var output = args.Option("out");
        args.RejectUnknown();
        if (format is not ("vkey" or "jwks"))
        {
            throw new CliUsageException($"--format is vkey or jwks, not '{format}'");
        }

        var keys = DomainKeys.Load(dir);
        var now = DateTimeOffset.UtcNow;
        if (output is null)
        {
            console.Out.Write(format == "vkey" ? keys.Root + "\n" : Jwks.ToText(keys.KeySet, now));
            return Task.FromResult(0);
        }

        foreach (var path in TrustFiles.Export(keys, output, format == "jwks", now))
        {
            console.Out.WriteLine(path);
        }

        return Task.FromResult(0);
    }
}
