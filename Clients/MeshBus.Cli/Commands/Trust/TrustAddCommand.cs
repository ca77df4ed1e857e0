using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Trust;

/// <summary><c>meshbus trust add</c>: pins a peer's root key.</summary>
public sealed class TrustAddCommand : CliCommand, IHasFlags
{
    public override string Name => "trust add";

    public override string Summary => "Pin a peer domain's root key (and optionally import its key set)";

    public override string Usage => """
        Usage: meshbus trust add --domain-dir DIR --peer NAME --root VKEY|FILE [--keyset FILE] [--replace]

        Writes DIR/trust/SLUG.vkey. VKEY is the peer's root verifier key (as printed by 'meshbus keys init' or
        'meshbus trust export --format vkey'), or a file holding it; its name must be NAME. Only the operator
        changes the trust config: verify the key out of band (e.g. compare the key id by phone).
          --keyset FILE   also import the peer's signed key set (checked against the pinned root, not expired)
          --replace       replace a different root already pinned for NAME
        """;

    public string[] Flags => ["replace"];

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var peer = args.Required("peer");
        var rootText = args.Required("root");
        var keysetFile = args.Option("keyset");
        var replace = args.Flag("replace");
        args.RejectUnknown();
        _ = DomainKeys.Load(dir); // must be a domain directory
        if (!VerifierKey.TryParse(rootText, out var root))
        {
            root = File.Exists(rootText)
                ? VerifierKey.Parse(File.ReadAllText(rootText))
                : throw new CliUsageException($"--root is neither a verifier key nor a file: {rootText}");
        }

        console.Out.WriteLine(TrustFiles.Pin(dir, peer, root!, replace));
        if (keysetFile is not null)
        {
            console.Out.WriteLine(TrustFiles.StorePeerKeySet(dir, File.ReadAllText(keysetFile), DateTimeOffset.UtcNow));
        }

        return Task.FromResult(0);
    }
}
