using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Agent;

/// <summary><c>meshbus agent attester-init</c>: a workload attester key registered with a domain (for demos and tests).</summary>
public sealed class AgentAttesterInitCommand : CliCommand
{
    public override string Name => "agent attester-init";

    public override string Summary => "Create a workload attester key and register it with a domain";

    public override string Usage => """
        Usage: meshbus agent attester-init --domain-dir DIR --name NAME --out FILE

        Writes the attester's private key to FILE (mode 0600) and registers its verifier key in
        DIR/attesters/SLUG.vkey, so 'meshbus agent issue' accepts statements it signs. Prints the attester vkey.
        In production the attester is the platform that measures workloads (node agent, CI); only its public key
        is registered here.
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var name = args.Required("name");
        var path = args.Required("out");
        args.RejectUnknown();
        _ = DomainKeys.Load(dir);
        if (File.Exists(path))
        {
            throw new IOException($"'{path}' exists; refusing to overwrite a key");
        }

        var attester = AttesterKey.Generate(name);
        attester.Save(path);
        SignedStatementAttestationVerifier.Register(dir, attester.VerifierKey);
        console.Out.WriteLine(attester.VerifierKey.ToString());
        return Task.FromResult(0);
    }
}
