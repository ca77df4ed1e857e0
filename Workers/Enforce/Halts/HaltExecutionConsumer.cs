using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Workers.Enforce.Lifecycle;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Enforce.Halts;

/// <summary>
/// Resolves a halt to its executions — one intent, or every live execution of an agent, a peer or a key found through
/// the saga index (written in the same transaction as the saga) — and routes it: the halt command to each agent's own
/// queue, signed (<see cref="HaltSigner"/>; the SDK verifies it, then cancels its lease), an <see cref="ExecutionHaltRequested"/> to each execution's saga.
/// </summary>
public sealed class HaltExecutionConsumer(ISagaIndex index, ISagaStateReader states, HaltSigner signer, IOptions<MeshBusOptions> mesh, ILogger<HaltExecutionConsumer> logger) : IConsumer<HaltExecution>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<HaltExecution> context)
    {
        var halt = context.Message;
        var ct = context.CancellationToken;
        if (halt.Domain != mesh.Value.Domain && halt.Scope != GovernanceScope.Execution)
        {
            // A peer's halt crossed the bridge because it concerns an intent the peer shares with this domain: it may
            // stop that execution, never an agent's, a peer's or a key's other work here (this domain's own Sync turns
            // a peer's lapse into a peer-scoped halt of its own).
            throw new MalformedMessageException(typeof(HaltExecution), [$"halt {halt.HaltId} by {halt.Domain}: a peer may halt only an execution it shares, not scope {halt.Scope} '{halt.Subject}'"]);
        }

        var agents = new HashSet<string>(StringComparer.Ordinal);
        IReadOnlyList<Guid> targets;
        if (halt.Scope == GovernanceScope.Execution)
        {
            var intentId = halt.IntentId ?? (Guid.TryParse(halt.Subject, out var id) ? id : throw new InvalidHaltException($"halt {halt.HaltId}: execution scope needs an intent id, got '{halt.Subject}'"));
            // The saga may not exist yet (the halt raced the intent): fail, so redelivery tries again later and an
            // unknown id ends in the error queue with this reason instead of vanishing.
            var state = await states.LoadAsync<IntentLifecycleState>(intentId, ct)
                ?? throw new InvalidHaltException($"halt {halt.HaltId}: no execution is known for intent {intentId}");
            if (state.Agent.Length > 0)
            {
                agents.Add(state.Agent);
            }

            targets = [intentId];
        }
        else
        {
            var kind = halt.Scope switch
            {
                GovernanceScope.Agent => IntentLifecycleState.AgentIndex,
                GovernanceScope.Peer => IntentLifecycleState.PeerIndex,
                GovernanceScope.Key => IntentLifecycleState.KeyIndex,
                _ => throw new InvalidHaltException($"halt {halt.HaltId}: unknown scope {halt.Scope}"),
            };
            if (string.IsNullOrWhiteSpace(halt.Subject))
            {
                throw new InvalidHaltException($"halt {halt.HaltId}: scope {halt.Scope} needs a subject");
            }

            targets = await index.FindAsync<IntentLifecycleState>(kind, halt.Subject, ct);
            if (halt.Scope == GovernanceScope.Agent)
            {
                // The agent may hold a lease its saga has not recorded yet: it hears the halt regardless.
                agents.Add(halt.Subject);
            }

            foreach (var id in targets)
            {
                if (await states.LoadAsync<IntentLifecycleState>(id, ct) is { Agent.Length: > 0 } s)
                {
                    agents.Add(s.Agent);
                }
            }
        }

        logger.LogInformation("Halt {HaltId} ({Scope} {Subject}, {Reason}): {Executions} execution(s), {Agents} agent(s)", halt.HaltId, halt.Scope, halt.Subject, halt.Reason, targets.Count, agents.Count);
        // What an agent acts on carries the domain's signature (DESIGN.md §9); the copy for the sagas needs none.
        // A peer's halt that crossed the bridge (the target of a cross-domain intent halting its part) reaches this
        // domain's agents as this domain's word: the home domain vouches for it with its own grant key, the key its
        // agents verify notices with, and names itself (the token's issuer must be the message's domain).
        var forAgents = halt.Domain == mesh.Value.Domain ? halt : halt with { Domain = mesh.Value.Domain };
        var signed = agents.Count > 0 ? signer.Sign(forAgents) : halt;
        foreach (var agent in agents)
        {
            var endpoint = await context.GetSendEndpoint(AgentQueue.Address(agent));
            await endpoint.Send(signed, ct);
        }

        foreach (var id in targets)
        {
            await context.Publish(new ExecutionHaltRequested(id, halt), ct);
        }
    }
}

/// <summary>A halt that cannot be applied (unknown intent, missing subject): redelivered, then in the error queue with this reason.</summary>
public sealed class InvalidHaltException(string message) : Exception(message);

/// <summary>Retries live in the endpoint defaults; halts are small and independent, so they run concurrently.</summary>
public sealed class HaltExecutionConsumerDefinition : ConsumerDefinition<HaltExecutionConsumer>
{
    /// <summary>Creates the definition.</summary>
    public HaltExecutionConsumerDefinition() => ConcurrentMessageLimit = 16;
}
