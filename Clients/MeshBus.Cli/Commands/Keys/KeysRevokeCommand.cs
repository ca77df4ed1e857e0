using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Keys;

/// <summary><c>meshbus keys revoke</c>: revokes one key id in a new key set.</summary>
public sealed class KeysRevokeCommand : CliCommand
{
    public override string Name => "keys revoke";

    public override string Summary => "Revoke a working key by kid (replaced at once if it was current)";

    public override string Usage => """
        Usage: meshbus keys revoke --domain-dir DIR --kid KID

        Lists KID in the key set's revoked ids (nothing it signed verifies any more, whenever it was signed),
        deletes its private key, creates a replacement when it was the current key of its usage, and writes
        keyset.json with the next sequence, signed by root.key. Publish it at once: peers stop trusting the key
        when they accept the new key set.
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var kid = args.Required("kid");
        args.RejectUnknown();
        var set = DomainAdministration.Revoke(dir, kid, DateTimeOffset.UtcNow, new KeyLifetimes());
        KeyCommandOptions.PrintKeySet(console, set);
        return Task.FromResult(0);
    }
}
