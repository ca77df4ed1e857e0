using MeshBus.Trust;

namespace MeshBus.Agent;

/// <summary>Who the agent is and how it treats leases.</summary>
public sealed class MeshBusAgentOptions
{
    /// <summary>The agent subject, e.g. <c>acme.example/prod/agents/deployer</c>.</summary>
    public required string Subject { get; init; }

    /// <summary>The agent's home domain (where it publishes intents).</summary>
    public required string HomeDomain { get; init; }

    /// <summary>The agent's raw Ed25519 private key (32 bytes); its public key is the credential's <c>cnf</c>.</summary>
    public required byte[] PrivateKey { get; init; }

    /// <summary>The agent credential (JWS) issued by the home domain.</summary>
    public required string Credential { get; init; }

    /// <summary>Resolves the deciding domains' grant keys (the trust config with the domains' key sets).</summary>
    public required IKeyResolver KeyResolver { get; init; }

    /// <summary>The clock: wall time for <c>nbf</c>/<c>exp</c> checks, monotonic timestamps for the lease. Tests move it.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Clock tolerance: grants are checked with it, and the lease ends this much before
    /// <c>receipt time + (exp − iat)</c> on the agent's own monotonic clock, and never later than this much before
    /// <c>exp</c> on its wall clock.
    /// </summary>
    public TimeSpan Skew { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often a started lease sends <c>ExecutionHeartbeat</c>.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The mesh's entity prefix (<c>RabbitMqTransport:EntityPrefix</c>), when it has one: the agent ingress exchanges
    /// are <c>&lt;prefix&gt;agent-intents</c> and <c>&lt;prefix&gt;agent-reports</c>. Empty by default.
    /// </summary>
    public string EntityPrefix { get; init; } = "";

    /// <summary>Where the agent logs what it refuses (a denial or halt whose signature does not verify). None by default.</summary>
    public Microsoft.Extensions.Logging.ILogger? Logger { get; init; }

    /// <summary>How long <see cref="MeshBusAgent.SubmitIntentAsync"/> waits for a decision.</summary>
    public TimeSpan DecisionTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
