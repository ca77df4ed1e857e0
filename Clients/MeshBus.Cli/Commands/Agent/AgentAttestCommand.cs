using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Agent;

/// <summary><c>meshbus agent attest</c>: an attester signs a statement about a workload (for demos and tests).</summary>
public sealed class AgentAttestCommand : CliCommand
{
    public override string Name => "agent attest";

    public override string Summary => "Sign a workload attestation with an attester key";

    public override string Usage => """
        Usage: meshbus agent attest --attester-key FILE --agent SUBJECT --public-key B64 --image-digest DIGEST
                                    [--runtime R] [--owner O] [--group G]... [--ttl SECONDS] [--out FILE]

        Prints (or writes to --out) a statement (JWS, typ meshbus-attestation+jwt) naming the agent, its public
        key and image digest, valid for --ttl seconds (default 3600).
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var keyFile = args.Required("attester-key");
        var agent = args.Required("agent");
        var publicKey = args.Required("public-key");
        var digest = args.Required("image-digest");
        var runtime = args.Option("runtime");
        var owner = args.Option("owner");
        var groups = args.Options("group");
        var ttl = args.Int("ttl", 3600);
        var output = args.Option("out");
        args.RejectUnknown();
        if (ttl <= 0)
        {
            throw new CliUsageException("--ttl must be a positive number of seconds");
        }

        var attester = AttesterKey.Load(keyFile);
        var now = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        var statement = attester.Attest(new AttestationStatement(attester.Name, agent, publicKey, digest, runtime, owner, groups.ToList(), now, now.AddSeconds(ttl)));
        if (output is null)
        {
            console.Out.WriteLine(statement);
        }
        else
        {
            File.WriteAllText(output, statement + "\n");
        }

        return Task.FromResult(0);
    }
}
