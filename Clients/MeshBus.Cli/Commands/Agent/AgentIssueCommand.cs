using MeshBus.Contracts;
using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Agent;

/// <summary><c>meshbus agent issue</c>: the home domain issues a credential after verifying an attestation.</summary>
public sealed class AgentIssueCommand : CliCommand
{
    public override string Name => "agent issue";

    public override string Summary => "Issue an agent credential (JWS) from an attestation";

    public override string Usage => """
        Usage: meshbus agent issue --domain-dir DIR --agent SUBJECT --public-key B64 --attestation FILE [--ttl SECONDS]

        Verifies the attestation in FILE (a statement signed by an attester registered in DIR/attesters, naming
        SUBJECT and the public key), then prints the credential (typ meshbus-credential+jwt) signed with the
        domain's credential key. The lifetime is --ttl (default 900, at most 3600) and never past the attestation's
        expiry. Exit 1 when the attestation is refused.
          --public-key B64   the agent's raw Ed25519 public key, base64url (see 'meshbus agent keygen')
        """;

    public override Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var agent = args.Required("agent");
        var publicKey = args.Required("public-key");
        var attestationFile = args.Required("attestation");
        var ttl = args.Option("ttl") is null ? (long?)null : args.Int("ttl", 0);
        args.RejectUnknown();
        if (ttl is <= 0)
        {
            throw new CliUsageException("--ttl must be a positive number of seconds");
        }

        var keys = DomainKeys.Load(dir, KeyUsage.Credential);
        var authority = CredentialAuthority.ForDomain(keys, TimeProvider.System);
        var attestation = (attestationFile == "-" ? console.In.ReadToEnd() : File.ReadAllText(attestationFile)).Trim();
        var result = authority.Issue(new IssueCredential(Guid.NewGuid(), keys.Domain, agent, publicKey, attestation, ttl));
        if (!result.IsValid)
        {
            console.Error.WriteLine($"meshbus agent issue: refused ({result.Reason}): {result.Detail}");
            return Task.FromResult(1);
        }

        console.Error.WriteLine($"credential {result.Value!.CredentialId} for {agent}, expires {result.Value.ExpiresAt:O}");
        console.Out.WriteLine(result.Value.Credential);
        return Task.FromResult(0);
    }
}
