using MeshBus.Cli.Commands.Halt;
using MeshBus.Hosting;
using RabbitMQ.Client.Exceptions;

namespace MeshBus.Cli.Commands.Errors;

/// <summary>The broker and queue arguments the three <c>meshbus errors</c> commands share.</summary>
public abstract class ErrorsCommandBase : CliCommand
{
    /// <inheritdoc />
    public sealed override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var env = MeshBusHost.BuildConfiguration([]);
        var rabbit = args.Option("rabbitmq");
        var prefix = args.Option("prefix") ?? env[$"{RabbitMqTransportOptions.Section}:{nameof(RabbitMqTransportOptions.EntityPrefix)}"] ?? "";
        var all = args.Flag("all");
        args.RejectUnknown();
        var broker = HaltCommand.Broker(rabbit, env);
        var queues = Queues(args.Positionals, all, prefix);
        try
        {
            await using var errors = await ErrorQueues.ConnectAsync(broker, cancellationToken);
            return await RunAsync(errors, queues, console, cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is BrokerUnreachableException or OperationInterruptedException or OperationCanceledException or TimeoutException or AlreadyClosedException)
        {
            console.Error.WriteLine($"meshbus {Name}: error: broker amqp://{broker.Host}:{broker.Port}/{broker.VirtualHost.TrimStart('/')}: {(e.InnerException ?? e).Message.ReplaceLineEndings(" ")}");
            return 2;
        }
    }

    /// <summary>The queues the arguments name.</summary>
    private protected abstract IReadOnlyList<string> Queues(IReadOnlyList<string> positionals, bool all, string prefix);

    /// <summary>Does the work on a connected broker.</summary>
    private protected abstract Task<int> RunAsync(ErrorQueues errors, IReadOnlyList<string> queues, CliConsole console, CancellationToken cancellationToken);
}

/// <summary><c>meshbus errors list [QUEUE...]</c>: the error and skipped queues that hold messages, with the first reason.</summary>
public sealed class ErrorsListCommand : ErrorsCommandBase
{
    /// <inheritdoc />
    public override string Name => "errors list";

    /// <inheritdoc />
    public override string Summary => "List the workers' _error and _skipped queues on RabbitMQ that hold messages";

    /// <inheritdoc />
    public override string Usage => $"""
        usage: meshbus errors list [QUEUE...] [--rabbitmq URI] [--prefix P]

        Without QUEUE: every _error and _skipped queue of the four workers' endpoints. Prints one line per queue holding
        messages (depth and the first message's MT-Reason / MT-Fault-Message) and a total. Exit 0.
        {ErrorQueues.Usage}
        """;

    private protected override IReadOnlyList<string> Queues(IReadOnlyList<string> positionals, bool all, string prefix) =>
        positionals.Count == 0 ? ErrorQueues.KnownQueues(prefix) : positionals.SelectMany(ErrorQueues.Expand).ToList();

    private protected override async Task<int> RunAsync(ErrorQueues errors, IReadOnlyList<string> queues, CliConsole console, CancellationToken cancellationToken)
    {
        long total = 0;
        foreach (var queue in queues)
        {
            var depth = await errors.DepthAsync(queue, cancellationToken);
            if (depth is null or 0)
            {
                continue;
            }

            total += depth.Value;
            var reason = await errors.PeekReasonAsync(queue, cancellationToken);
            console.Out.WriteLine($"{queue}\t{depth}\t{reason ?? ""}");
        }

        console.Out.WriteLine($"{total} message(s) in error and skipped queues");
        return 0;
    }
}

/// <summary><c>meshbus errors replay (QUEUE... | --all)</c>: moves messages back to the queue they failed on.</summary>
public sealed class ErrorsReplayCommand : ErrorsCommandBase, IHasFlags
{
    /// <inheritdoc />
    public override string Name => "errors replay";

    /// <inheritdoc />
    public override string Summary => "Move messages from _error/_skipped queues back to their endpoint queue, headers kept";

    /// <inheritdoc />
    public override string Usage => $"""
        usage: meshbus errors replay (QUEUE... | --all) [--rabbitmq URI] [--prefix P]

        Moves the messages waiting now in each error or skipped queue back to its endpoint's queue (NAME_error -> NAME),
        properties and headers unchanged; each is confirmed by the broker before it leaves the error queue. Messages
        that fail again return to the error queue and are not replayed twice in one run. --all: every worker endpoint.
        Exit 0; 2 when the broker cannot be reached or an endpoint queue does not exist.
        {ErrorQueues.Usage}
        """;

    /// <inheritdoc />
    public string[] Flags => ["all"];

    private protected override IReadOnlyList<string> Queues(IReadOnlyList<string> positionals, bool all, string prefix)
    {
        if (all == (positionals.Count > 0))
        {
            throw new CliUsageException("give the QUEUE(s) to replay, or --all");
        }

        return all ? ErrorQueues.KnownQueues(prefix) : positionals.SelectMany(ErrorQueues.Expand).ToList();
    }

    private protected override async Task<int> RunAsync(ErrorQueues errors, IReadOnlyList<string> queues, CliConsole console, CancellationToken cancellationToken)
    {
        var total = 0;
        foreach (var queue in queues)
        {
            if (await errors.DepthAsync(queue, cancellationToken) is null or 0)
            {
                continue;
            }

            try
            {
                var moved = await errors.ReplayAsync(queue, cancellationToken);
                total += moved;
                console.Out.WriteLine($"{queue} -> {ErrorQueues.OriginalQueue(queue)}: {moved} message(s)");
            }
            catch (InvalidOperationException e)
            {
                console.Error.WriteLine($"meshbus {Name}: error: {e.Message}");
                return 2;
            }
        }

        console.Out.WriteLine($"{total} message(s) replayed");
        return 0;
    }
}

/// <summary><c>meshbus errors purge QUEUE</c>: empties one error or skipped queue, named explicitly.</summary>
public sealed class ErrorsPurgeCommand : ErrorsCommandBase
{
    /// <inheritdoc />
    public override string Name => "errors purge";

    /// <inheritdoc />
    public override string Summary => "Delete the messages of one named _error or _skipped queue";

    /// <inheritdoc />
    public override string Usage => $"""
        usage: meshbus errors purge QUEUE_error|QUEUE_skipped [--rabbitmq URI]

        Deletes every message of the one error or skipped queue named (never an endpoint's own queue, never all at once).
        Exit 0 with the number deleted; 2 when the queue does not exist or the broker cannot be reached.
        {ErrorQueues.Usage}
        """;

    private protected override IReadOnlyList<string> Queues(IReadOnlyList<string> positionals, bool all, string prefix)
    {
        if (all || positionals.Count != 1 || !ErrorQueues.IsErrorQueue(positionals[0]))
        {
            throw new CliUsageException("name exactly one queue ending in _error or _skipped");
        }

        return positionals;
    }

    private protected override async Task<int> RunAsync(ErrorQueues errors, IReadOnlyList<string> queues, CliConsole console, CancellationToken cancellationToken)
    {
        if (await errors.DepthAsync(queues[0], cancellationToken) is null)
        {
            console.Error.WriteLine($"meshbus {Name}: error: no queue {queues[0]}");
            return 2;
        }

        var purged = await errors.PurgeAsync(queues[0], cancellationToken);
        console.Out.WriteLine($"{queues[0]}: {purged} message(s) deleted");
        return 0;
    }
}
