using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Keys;

/// <summary><c>meshbus keys rotate</c>: new working keys, a new key set signed by the root.</summary>
public sealed class KeysRotateCommand : CliCommand
{
    public override string Name => "keys rotate";

    public override string Summary => "Rotate working keys (all usages, or --usage U) and sign a new key set";

    public override string Usage => """
        Usage: meshbus keys rotate --domain-dir DIR [--usage U]... [--overlap SECONDS] [--key-days N] [--keyset-days N]

        Creates a new key for each usage (grant, credential, envelope, log, witness; all when --usage is absent),
        keeps the previous keys verifying for --overlap seconds (default 86400; it must exceed the longest grant and
        credential lifetime), deletes their private keys, and writes keyset.json with the next sequence, signed by
        root.key. Publish the new key set to peers (the Sync worker does it on start); restart workers so they load
        the new keys.
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var usages = args.Options("usage").Select(u => KeyUsages.TryParse(u, out var k) ? k : throw new CliUsageException($"unknown usage '{u}' (grant, credential, envelope, log, witness)")).Distinct().ToList();
        var lifetimes = KeyCommandOptions.Lifetimes(args);
        args.RejectUnknown();
        var set = DomainAdministration.Rotate(dir, DateTimeOffset.UtcNow, usages, lifetimes);
        KeyCommandOptions.PrintKeySet(console, set);
        return Task.FromResult(0);
    }
}
