using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using Microsoft.Extensions.Configuration;

namespace MeshBus.Cli.Commands.Halt;

/// <summary>
/// <c>meshbus halt</c>: orders a halt on a running fleet. Publishes <see cref="HaltExecution"/> on the domain's
/// RabbitMQ bus; the Enforce worker routes it to the agents concerned (their token is cancelled), the lifecycle sagas
/// wait for <c>ExecutionHalted</c>, and the Lineage worker records the halt.
/// </summary>
public sealed class HaltCommand : CliCommand
{
    /// <inheritdoc />
    public override string Name => "halt";

    /// <inheritdoc />
    public override string Summary => "Halt one execution, or every execution of an agent, a peer domain or a key";

    /// <inheritdoc />
    public override string Usage => """
        usage: meshbus halt (--intent ID | --agent SUBJECT | --peer DOMAIN | --key KID) [--detail TEXT]
                            [--domain DOMAIN] [--rabbitmq amqp://USER:PASS@HOST:PORT/VHOST]

        Publishes HaltExecution (reason OperatorHalt) on the domain's bus. The domain and the broker come from the
        options, or from the environment the workers use: MeshBus__Domain and RabbitMqTransport__Host, __Port,
        __VirtualHost, __Username, __Password. Exit 0 once the broker confirmed the publish.
        """;

    /// <summary>Builds the halt command message for one scope.</summary>
    public static HaltExecution Create(string domain, GovernanceScope scope, string subject, string detail, DateTimeOffset now)
    {
        var halt = new HaltExecution(Guid.NewGuid(), domain, scope, subject, GovernanceReason.OperatorHalt, detail, now);
        if (scope == GovernanceScope.Execution)
        {
            halt = halt with { IntentId = Guid.TryParse(subject, out var id) ? id : throw new CliUsageException($"--intent needs an intent id (a UUID), got '{subject}'") };
        }

        return halt;
    }

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var scopes = new (string Option, GovernanceScope Scope)[]
        {
            ("intent", GovernanceScope.Execution), ("agent", GovernanceScope.Agent), ("peer", GovernanceScope.Peer), ("key", GovernanceScope.Key),
        };
        var chosen = scopes.Select(s => (s.Scope, Value: args.Option(s.Option))).Where(s => s.Value is not null).ToList();
        var detail = args.Option("detail") ?? "operator halt";
        var env = MeshBusHost.BuildConfiguration([]);
        var domain = args.Option("domain") ?? env[$"{MeshBusOptions.Section}:{nameof(MeshBusOptions.Domain)}"];
        var rabbit = args.Option("rabbitmq");
        args.RejectUnknown();
        if (chosen.Count != 1 || string.IsNullOrWhiteSpace(chosen[0].Value))
        {
            throw new CliUsageException("give exactly one of --intent, --agent, --peer, --key");
        }

        if (string.IsNullOrWhiteSpace(domain))
        {
            throw new CliUsageException("the domain is unknown: give --domain or set MeshBus__Domain");
        }

        var halt = Create(domain, chosen[0].Scope, chosen[0].Value!, detail, DateTimeOffset.UtcNow);
        var broker = Broker(rabbit, env);
        if (!await PublishBoundedAsync(broker, halt, "halt", "the halt", console, cancellationToken))
        {
            return 1;
        }

        console.Out.WriteLine($"halt {halt.HaltId} published on {domain}: {halt.Scope} {halt.Subject} ({detail})");
        return 0;
    }

    /// <summary>How long the command waits for the broker to accept and confirm the halt.</summary>
    public static TimeSpan BrokerTimeout { get; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Publishes <paramref name="message"/> on the broker with publisher confirmation, within <see cref="BrokerTimeout"/>:
    /// MassTransit keeps retrying a broker it cannot reach, so the whole attempt is bounded and an operator gets one line
    /// (<c>meshbus COMMAND: error: ...</c>) instead of a hang. False when it was not confirmed.
    /// </summary>
    internal static async Task<bool> PublishBoundedAsync<T>(MeshBus.Hosting.RabbitMqTransportOptions broker, T message, string command, string what, CliConsole console, CancellationToken cancellationToken)
        where T : class
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(broker.Host, broker.Port, broker.VirtualHost, h =>
            {
                h.Username(broker.Username);
                h.Password(broker.Password);
                h.PublisherConfirmation = true;
            });
        });
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(BrokerTimeout);
        try
        {
            await bus.StartAsync(bound.Token);
            await bus.Publish(message, bound.Token);
            return true;
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && (bound.IsCancellationRequested || e is MassTransit.RabbitMqConnectionException))
        {
            console.Error.WriteLine($"meshbus {command}: error: the broker amqp://{broker.Host}:{broker.Port}{broker.VirtualHost} did not confirm {what} within {BrokerTimeout.TotalSeconds:0} s; it may not have been published: {e.Message.ReplaceLineEndings(" ")}");
            return false;
        }
        finally
        {
            using var stopBound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await bus.StopAsync(stopBound.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>The broker from <c>--rabbitmq</c> or the workers' environment (<c>RabbitMqTransport__*</c>).</summary>
    internal static MeshBus.Hosting.RabbitMqTransportOptions Broker(string? uri, IConfiguration env)
    {
        if (uri is null)
        {
            var o = env.GetSection(MeshBus.Hosting.RabbitMqTransportOptions.Section).Get<MeshBus.Hosting.RabbitMqTransportOptions>() ?? new MeshBus.Hosting.RabbitMqTransportOptions();
            if (string.IsNullOrWhiteSpace(o.Host))
            {
                throw new CliUsageException("the broker is unknown: give --rabbitmq amqp://USER:PASS@HOST:PORT/VHOST or set RabbitMqTransport__Host");
            }

            return o;
        }

        if (!Uri.TryCreate(uri, UriKind.Absolute, out var u) || u.Scheme != "amqp")
        {
            throw new CliUsageException($"--rabbitmq must be an amqp:// URI, got '{uri}'");
        }

        var userInfo = Uri.UnescapeDataString(u.UserInfo).Split(':', 2);
        var vhost = Uri.UnescapeDataString(u.AbsolutePath.TrimStart('/'));
        return new MeshBus.Hosting.RabbitMqTransportOptions
        {
            Host = u.Host,
            Port = u.Port > 0 ? (ushort)u.Port : (ushort)5672,
            VirtualHost = vhost.Length == 0 ? "/" : vhost,
            Username = userInfo[0].Length > 0 ? userInfo[0] : "guest",
            Password = userInfo.Length > 1 ? userInfo[1] : "guest",
        };
    }
}
