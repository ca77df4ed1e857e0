using MeshBus.Cli.Commands.Lineage;
using MeshBus.Ledger;
using MeshBus.Ledger.Evidence;
using MeshBus.Trust;
using MeshBus.Trust.Notes;

namespace MeshBus.Cli.Commands.Proof;

/// <summary><c>meshbus proof export</c>: writes the <c>meshbus-evidence/v1</c> bundle of an intent.</summary>
public sealed class ProofExportCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "proof export";

    /// <inheritdoc/>
    public override string Summary => "Write the evidence bundle (meshbus-evidence/v1) of an intent";

    /// <inheritdoc/>
    public override string Usage => $"""
        Usage: meshbus proof export --intent ID --out FILE (--store PATH | --postgres CS) --domain-dir DIR [--grant FILE]
          --intent ID         the intent id
          --out FILE          where to write the bundle (- for standard output)
        {LineageStoreOptions.Usage}
          --domain-dir DIR    the domain directory (meshbus keys init): its log key signs a covering checkpoint when
                              needed; its key set gives the JWKS, its pinned peers the witness keys
          --grant FILE        the grant JWS (default: rebuilt from the intent's decision record with the domain's
                              grant key of that time, when its private half is in DIR)
        """;

    /// <inheritdoc/>
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var intent = args.Required("intent");
        var output = args.Required("out");
        var dir = args.Required("domain-dir");
        var grantFile = args.Option("grant");
        await using var log = await LineageStoreOptions.OpenAsync(args, cancellationToken);
        args.RejectUnknown();

        var now = DateTimeOffset.UtcNow;
        var keys = DomainKeys.Load(dir, KeyUsage.Log, KeyUsage.Grant);
        var origin = LineageNames.Origin(keys.Domain);
        var signer = new Ed25519NoteSigner(origin, keys.Signer(KeyUsage.Log, now));
        var publisher = new CheckpointPublisher(log, log, signer);
        var trust = keys.LoadTrust();
        var witnesses = trust.PeerKeySets.Values
            .SelectMany(s => s.Keys.Where(k => k.Usage == KeyUsage.Witness).Select(k => VerifierKey.Create(LineageNames.Witness(s.Domain), k.PublicKeyBytes(), VerifierKey.CosignatureType)))
            .ToList();
        var grant = grantFile is null ? null : (await File.ReadAllTextAsync(grantFile, cancellationToken)).Trim();
        var bundle = await EvidenceExporter.ExportAsync(log, publisher, signer.VerifierKey, intent, witnesses, Jwks.FromKeySet(keys.KeySet, now), grant, at => GrantSignerAt(keys, at), cancellationToken);
        var json = bundle.ToJson();
        if (output == "-")
        {
            await console.Out.WriteAsync(json);
        }
        else
        {
            await File.WriteAllTextAsync(output, json, cancellationToken);
            console.Out.WriteLine($"wrote {output}: {bundle.Records.Count} record(s) of intent {intent}, grant {(bundle.Grant is null ? "none" : "included")}");
        }

        return 0;
    }

    /// <summary>The grant key that was current at <paramref name="at"/>; null when its private half is not in the directory.</summary>
    private static ISigner? GrantSignerAt(DomainKeys keys, DateTimeOffset at)
    {
        try
        {
            return keys.Signer(KeyUsage.Grant, at);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
