using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Agent;

/// <summary><c>meshbus agent keygen</c>: an agent key pair for demos.</summary>
public sealed class AgentKeygenCommand : CliCommand
{
    public override string Name => "agent keygen";

    public override string Summary => "Create an agent key pair file; prints the public key (base64url)";

    public override string Usage => """
        Usage: meshbus agent keygen --out FILE

        Writes FILE (mode 0600, JSON meshbus-agent-key/v1) and prints the raw Ed25519 public key, base64url, as
        'meshbus agent attest' and 'meshbus agent issue' take it. Refuses to overwrite FILE.
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var path = args.Required("out");
        args.RejectUnknown();
        if (File.Exists(path))
        {
            throw new IOException($"'{path}' exists; refusing to overwrite a key");
        }

        var key = AgentKey.Generate();
        key.Save(path);
        console.Out.WriteLine(key.PublicKeyText);
        return Task.FromResult(0);
    }
}
