using MeshBus.Contracts;
using MeshBus.Trust;
using RabbitMQ.Client;

namespace MeshBus.Cli.Commands.Agent;

/// <summary>
/// An agent's own RabbitMQ user (DESIGN.md §9): it may write the two agent ingress exchanges and read its own queue,
/// and nothing else; it declares nothing (the mesh declares its queue before it first connects). Workers and agents
/// never share a user. docs/operations.md, "Agents' broker users".
/// </summary>
/// <param name="User">The broker user name: the agent's queue name (unique per subject).</param>
/// <param name="Queue">The agent's queue.</param>
/// <param name="Configure">The configure permission pattern (<c>^$</c>: nothing).</param>
/// <param name="Write">The write permission pattern: the two ingress exchanges.</param>
/// <param name="Read">The read permission pattern: the agent's queue.</param>
public sealed record AgentBrokerAccess(string User, string Queue, string Configure, string Write, string Read)
{
    /// <summary>The access of <paramref name="agentSubject"/> on a mesh with <paramref name="entityPrefix"/>.</summary>
    public static AgentBrokerAccess For(string agentSubject, string entityPrefix = "")
    {
        var queue = AgentQueue.Name(agentSubject);
        var (configure, write, read) = AgentIngress.Permissions(agentSubject, entityPrefix);
        return new AgentBrokerAccess(queue, queue, configure, write, read);
    }

    /// <summary>The <c>rabbitmqctl</c> commands that create the user with <paramref name="password"/> in <paramref name="virtualHost"/>.</summary>
    public IReadOnlyList<IReadOnlyList<string>> RabbitMqCtlCommands(string password, string virtualHost = "/") =>
    [
        ["add_user", User, password],
        ["set_permissions", "-p", virtualHost, User, Configure, Write, Read],
    ];

    /// <summary>
    /// Declares the agent's queue as the mesh sends to it, so the agent can read it before it ever published: a durable
    /// fanout exchange and a durable queue of the same name (not exclusive, not auto-deleted, no arguments), the queue
    /// bound to the exchange. Idempotent; run with the mesh's own (worker) broker user.
    /// </summary>
    public async Task DeclareQueueAsync(IConnection connection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        await channel.ExchangeDeclareAsync(Queue, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueDeclareAsync(Queue, durable: true, exclusive: false, autoDelete: false, cancellationToken: cancellationToken);
        await channel.QueueBindAsync(Queue, Queue, "", cancellationToken: cancellationToken);
    }
}
