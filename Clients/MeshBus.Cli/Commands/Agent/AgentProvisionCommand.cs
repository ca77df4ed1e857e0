using System.Security.Cryptography;
using MeshBus.Trust.Crypto;
using RabbitMQ.Client;

namespace MeshBus.Cli.Commands.Agent;

/// <summary><c>meshbus agent provision</c>: an agent's own broker user, its exact permissions, and its queue.</summary>
public sealed class AgentProvisionCommand : CliCommand
{
    public override string Name => "agent provision";

    public override string Summary => "Print an agent's RabbitMQ user and permissions; declare its queue";

    public override string Usage => """
        Usage: meshbus agent provision --agent SUBJECT [--prefix PREFIX] [--vhost VHOST] [--broker AMQP-URI]

        Prints the rabbitmqctl commands that create the agent's own broker user (named like its queue, with a fresh
        random password, printed once) with exactly these permissions in VHOST (default /):
          configure ^$                                   it declares nothing
          write     ^(PREFIXagent-intents|PREFIXagent-reports)$   the agent ingress, nothing else
          read      ^<its queue>$                        its grants, denials and halts, nobody else's
        With --broker (the mesh's own broker user, e.g. amqp://meshbus:PASSWORD@host:5672/vhost) it also declares
        the agent's queue, as the mesh sends to it: a durable fanout exchange and a durable queue of the same name,
        bound, not exclusive, not auto-deleted, no arguments. Run it before the agent first connects.
          --prefix PREFIX   the mesh's RabbitMqTransport:EntityPrefix, when it has one
        Exit 1 when the broker cannot be reached.
        """;

    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var agent = args.Required("agent");
        var prefix = args.Option("prefix") ?? "";
        var vhost = args.Option("vhost") ?? "/";
        var broker = args.Option("broker");
        args.RejectUnknown();
        if (string.IsNullOrWhiteSpace(agent))
        {
            throw new CliUsageException("--agent must name the agent's subject");
        }

        var access = AgentBrokerAccess.For(agent, prefix);
        var password = Base64Url.Encode(RandomNumberGenerator.GetBytes(24));
        await console.Out.WriteLineAsync($"# broker user for {agent}");
        await console.Out.WriteLineAsync($"# user  {access.User}");
        await console.Out.WriteLineAsync($"# queue {access.Queue}");
        foreach (var command in access.RabbitMqCtlCommands(password, vhost))
        {
            await console.Out.WriteLineAsync("rabbitmqctl " + string.Join(' ', command.Select(Quote)));
        }

        if (broker is not null)
        {
            try
            {
                await using var connection = await new ConnectionFactory { Uri = new Uri(broker) }.CreateConnectionAsync(cancellationToken);
                await access.DeclareQueueAsync(connection, cancellationToken);
            }
            catch (Exception e) when (e is RabbitMQ.Client.Exceptions.BrokerUnreachableException or RabbitMQ.Client.Exceptions.OperationInterruptedException or UriFormatException or ArgumentException)
            {
                await console.Error.WriteLineAsync($"meshbus agent provision: could not declare {access.Queue} on the broker: {e.Message}");
                return 1;
            }

            await console.Error.WriteLineAsync($"declared queue {access.Queue} (durable, bound to its fanout exchange)");
        }

        return 0;
    }

    private static string Quote(string s) => s.All(c => char.IsLetterOrDigit(c) || c is '.' or '-' or '_' or '/') ? s : "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
