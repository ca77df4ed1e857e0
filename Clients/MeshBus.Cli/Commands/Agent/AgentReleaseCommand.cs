using System.Globalization;
using System.Text.Json;
using MeshBus.Cli.Commands.Halt;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Agent;

/// <summary>
/// <c>meshbus agent release SUBJECT</c>: lifts a quarantine. Releasing is an operator act with the domain's root key
/// (the same offline key that signs key sets): the command signs <see cref="AgentReleased"/> naming the quarantine it
/// lifts (<c>--quarantined-at</c>, the <c>QuarantinedAt</c> of the <c>AgentQuarantined</c> in force) and publishes it on
/// the domain's bus, where Authorize verifies the root signature and lifts exactly that quarantine.
/// </summary>
public sealed class AgentReleaseCommand : CliCommand, IHasFlags
{
    /// <inheritdoc />
    public override string Name => "agent release";

    /// <inheritdoc />
    public override string Summary => "Lift an agent's quarantine (signed AgentReleased, by the domain's root key)";

    /// <inheritdoc />
    public override string Usage => """
        usage: meshbus agent release SUBJECT --domain-dir DIR --quarantined-at TIME [--by NAME] [--print]
                                     [--rabbitmq amqp://USER:PASS@HOST:PORT/VHOST]

        Signs AgentReleased for SUBJECT with the root key in DIR (root.key) and publishes it on the domain's bus.
        TIME is the QuarantinedAt of the quarantine to lift (RFC 3339, e.g. 2026-12-06T01:02:03.456Z, as recorded in
        lineage under quarantined:...); a release lifts only that quarantine, never a later one. --by names the operator
        (default: $USER). --print writes the signed message as JSON to standard output instead of publishing (to
        carry it from an offline machine). The broker comes from --rabbitmq or RabbitMqTransport__Host, __Port,
        __VirtualHost, __Username, __Password. Exit 0 once the broker confirmed the publish; 1 with one line when it
        did not within 15 s (unreachable broker, wrong credentials).
        """;

    /// <inheritdoc />
    public string[] Flags => ["print"];

    /// <summary>Builds the signed release: the domain and its root come from <paramref name="domainDirectory"/>.</summary>
    public static AgentReleased Create(string domainDirectory, string subject, DateTimeOffset quarantinedAt, string releasedBy, DateTimeOffset now)
    {
        var root = DomainAdministration.ReadRoot(domainDirectory);
        var release = new AgentReleased(root.Domain, subject, releasedBy, now) { QuarantinedAt = quarantinedAt };
        return release with { Signature = GovernanceSignatures.SignAsRoot(release, root) };
    }

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var at = args.Required("quarantined-at");
        var by = args.Option("by") ?? Environment.GetEnvironmentVariable("USER") ?? "operator";
        var print = args.Flag("print");
        var rabbit = args.Option("rabbitmq");
        args.RejectUnknown();
        if (args.Positionals.Count != 1 || string.IsNullOrWhiteSpace(args.Positionals[0]))
        {
            throw new CliUsageException("give exactly one agent SUBJECT to release");
        }

        if (!DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var quarantinedAt))
        {
            throw new CliUsageException($"--quarantined-at must be an RFC 3339 time like 2026-12-06T01:02:03.456Z, got '{at}'");
        }

        var release = Create(dir, args.Positionals[0], quarantinedAt, by, DateTimeOffset.UtcNow);
        if (print)
        {
            console.Out.WriteLine(JsonSerializer.Serialize(release, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
            return 0;
        }

        var broker = HaltCommand.Broker(rabbit, MeshBusHost.BuildConfiguration([]));
        if (!await HaltCommand.PublishBoundedAsync(broker, release, "agent release", "the release", console, cancellationToken))
        {
            return 1;
        }

        console.Out.WriteLine($"release of {release.Agent} (quarantine of {quarantinedAt:O}) published on {release.Domain} by {by}");
        return 0;
    }
}
