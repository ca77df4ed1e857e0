using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Keys;

/// <summary><c>meshbus keys init</c>: creates a domain directory with a root key and key set 1.</summary>
public sealed class KeysInitCommand : CliCommand
{
    public override string Name => "keys init";

    public override string Summary => "Create a domain: root key, one working key per usage, key set 1; prints the root vkey";

    public override string Usage => """
        Usage: meshbus keys init --domain NAME --out DIR [--key-days N] [--keyset-days N]

        Creates DIR (mode 0700) with root.key (keep it offline), root.vkey, keyset.json (sequence 1, signed by the
        root) and keys/<kid>.key for the usages grant, credential, envelope, log and witness (mode 0600).
        Prints the root verifier key (what peers pin with 'meshbus trust add') on standard output.

          --domain NAME      the domain name, e.g. acme.example/prod
          --out DIR          the directory to create (must not hold a domain yet)
          --key-days N       working key lifetime in days (default 90)
          --keyset-days N    key set lifetime in days (default 30)
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var domain = args.Required("domain");
        var dir = args.Required("out");
        var lifetimes = KeyCommandOptions.Lifetimes(args);
        args.RejectUnknown();
        var keys = DomainAdministration.Initialize(dir, domain, DateTimeOffset.UtcNow, lifetimes);
        console.Error.WriteLine($"created {domain} in {dir}: key set {keys.KeySet.Sequence} with {string.Join(", ", keys.KeySet.Keys.Select(k => k.KeyId))}");
        console.Error.WriteLine($"guard {Path.Combine(dir, DomainKeys.RootKeyFile)}: move it offline after publishing; it is needed only to rotate, revoke or sign federation policy");
        console.Out.WriteLine(keys.Root.ToString());
        return Task.FromResult(0);
    }
}

/// <summary>Options shared by the key commands.</summary>
internal static class KeyCommandOptions
{
    public static KeyLifetimes Lifetimes(CliArgs args)
    {
        var defaults = new KeyLifetimes();
        var keyDays = args.Int("key-days", (long)defaults.WorkingKey.TotalDays);
        var setDays = args.Int("keyset-days", (long)defaults.KeySet.TotalDays);
        var overlap = args.Int("overlap", (long)defaults.Overlap.TotalSeconds);
        if (keyDays is < 1 or > 3650 || setDays is < 1 or > 3650 || overlap is < 0 or > 315360000)
        {
            throw new CliUsageException("--key-days and --keyset-days take 1..3650, --overlap 0..315360000 seconds");
        }

        return new KeyLifetimes { WorkingKey = TimeSpan.FromDays(keyDays), KeySet = TimeSpan.FromDays(setDays), Overlap = TimeSpan.FromSeconds(overlap) };
    }

    public static void PrintKeySet(CliConsole console, KeySet set)
    {
        console.Out.WriteLine($"key set {set.Sequence} of {set.Domain}, expires {KeySet.FormatTime(set.ExpiresAt)}");
        foreach (var k in set.Keys.OrderBy(k => k.Usage).ThenBy(k => k.NotBefore))
        {
            var state = set.Revoked.Contains(k.KeyId) ? "revoked" : set.Current(k.Usage, DateTimeOffset.UtcNow)?.KeyId == k.KeyId ? "current" : "retiring";
            console.Out.WriteLine($"  {k.KeyId}  {k.Usage.ToWire(),-10}  {KeySet.FormatTime(k.NotBefore)} .. {KeySet.FormatTime(k.NotAfter)}  {state}");
        }
    }
}
