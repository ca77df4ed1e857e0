using MeshBus.Contracts;

namespace MeshBus.Trust;

/// <summary>
/// Where agents publish: two exchanges of their own, never the type-named exchanges the workers use among themselves
/// (DESIGN.md §9). Intents go to <see cref="IntentsExchange"/>, execution reports to <see cref="ReportsExchange"/>
/// (both fanout, under the mesh's entity prefix). An agent's broker user may write these two and nothing else; the
/// mesh accepts from each only the types in <see cref="IntentTypes"/> / <see cref="ReportTypes"/>, checks them, and
/// only then publishes them where workers listen. docs/wire-format.md and docs/operations.md.
/// </summary>
public static class AgentIngress
{
    /// <summary>The exchange (and queue) agents publish intents to, without the entity prefix.</summary>
    public const string IntentsExchange = "agent-intents";

    /// <summary>The exchange (and queue) agents publish execution reports to, without the entity prefix.</summary>
    public const string ReportsExchange = "agent-reports";

    /// <summary>The one type accepted on <see cref="IntentsExchange"/>.</summary>
    public static IReadOnlyList<Type> IntentTypes { get; } = [typeof(IntentSubmitted)];

    /// <summary>The types accepted on <see cref="ReportsExchange"/>.</summary>
    public static IReadOnlyList<Type> ReportTypes { get; } = [typeof(ExecutionStarted), typeof(ExecutionHeartbeat), typeof(ExecutionCompleted), typeof(ExecutionHalted)];

    /// <summary>Every type an agent may publish.</summary>
    public static IReadOnlyList<Type> AgentTypes { get; } = [.. IntentTypes, .. ReportTypes];

    /// <summary>The MassTransit send address of the intents exchange under <paramref name="entityPrefix"/>.</summary>
    public static Uri IntentsAddress(string entityPrefix = "") => new("exchange:" + entityPrefix + IntentsExchange);

    /// <summary>The MassTransit send address of the reports exchange under <paramref name="entityPrefix"/>.</summary>
    public static Uri ReportsAddress(string entityPrefix = "") => new("exchange:" + entityPrefix + ReportsExchange);

    /// <summary>
    /// The RabbitMQ permission patterns of an agent's own broker user: configure nothing (the mesh declares the agent's
    /// queue), write only the two ingress exchanges, read only its own queue.
    /// </summary>
    public static (string Configure, string Write, string Read) Permissions(string agentSubject, string entityPrefix = "") =>
        ("^$",
         $"^({Escape(entityPrefix + IntentsExchange)}|{Escape(entityPrefix + ReportsExchange)})$",
         $"^{Escape(AgentQueue.Name(agentSubject))}$");

    private static string Escape(string name) => System.Text.RegularExpressions.Regex.Escape(name);
}
