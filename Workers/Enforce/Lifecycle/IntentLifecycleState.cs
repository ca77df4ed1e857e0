using MassTransit;
using MeshBus.Contracts;
using MeshBus.Persistence;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>One intent's lifecycle, stored durably; live executions are indexed by agent, peer and key.</summary>
public sealed class IntentLifecycleState : SagaStateMachineInstance, ISagaVersion, IIndexedSaga
{
    /// <summary>Index kind of the agent subject.</summary>
    public const string AgentIndex = "agent";

    /// <summary>Index kind of a domain the execution involves.</summary>
    public const string PeerIndex = "peer";

    /// <summary>Index kind of a key id the execution relies on.</summary>
    public const string KeyIndex = "key";

    /// <summary>The intent id.</summary>
    public Guid CorrelationId { get; set; }

    /// <summary>Optimistic concurrency version.</summary>
    public int Version { get; set; }

    /// <summary>The state's name.</summary>
    public string CurrentState { get; set; } = "";

    /// <summary>The agent's home domain.</summary>
    public string Domain { get; set; } = "";

    /// <summary>The agent subject.</summary>
    public string Agent { get; set; } = "";

    /// <summary>
    /// The agent key the grant was bound to (its <c>cnf</c>, base64url): execution reports must verify with it. Set once,
    /// from the first grant.
    /// </summary>
    public string? AgentKey { get; set; }

    /// <summary>The domain that owns the resource.</summary>
    public string TargetDomain { get; set; } = "";

    /// <summary>The intent's action.</summary>
    public string Action { get; set; } = "";

    /// <summary>The intent's resource.</summary>
    public string Resource { get; set; } = "";

    /// <summary>The key id of the agent's credential issuer.</summary>
    public string? CredentialKeyId { get; set; }

    /// <summary>The key id that signed the current grant.</summary>
    public string? GrantKeyId { get; set; }

    /// <summary>The current grant's <c>jti</c>.</summary>
    public string? GrantId { get; set; }

    /// <summary>Lineage index of the latest decision.</summary>
    public long? LineageIndex { get; set; }

    /// <summary>The lease expiry.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }

    /// <summary>The lease length (exp − iat of the latest grant).</summary>
    public TimeSpan? LeaseLength { get; set; }

    /// <summary>Renewals applied.</summary>
    public int Renewal { get; set; }

    /// <summary>The highest renewal asked of Authorize.</summary>
    public int RenewalRequested { get; set; }

    /// <summary>
    /// The highest epoch of this domain's policy the execution was decided or re-evaluated under (from the grant's
    /// <c>policies</c> claim, then each re-evaluation asked); a newly applied epoch above it re-evaluates the execution.
    /// </summary>
    public long PolicyEpoch { get; set; }

    /// <summary>The highest heartbeat sequence seen.</summary>
    public long LastHeartbeatSequence { get; set; }

    /// <summary>When the last heartbeat arrived (saga clock).</summary>
    public DateTimeOffset? LastHeartbeatAt { get; set; }

    /// <summary>The current halt, while halting or once halted.</summary>
    public Guid? HaltId { get; set; }

    /// <summary>How many times the halt acknowledgement deadline passed.</summary>
    public int HaltDeadlinesMissed { get; set; }

    /// <summary>Whether this saga quarantined its agent.</summary>
    public bool QuarantineRequested { get; set; }

    /// <summary>Why the intent ended as it did (denial, halt or expiry reason).</summary>
    public GovernanceReason Reason { get; set; }

    /// <summary>Explanation of <see cref="Reason"/>.</summary>
    public string? Detail { get; set; }

    /// <summary>Last change (saga clock).</summary>
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>Timeout token: decision.</summary>
    public Guid? DecisionTimeoutToken { get; set; }

    /// <summary>Timeout token: lease expiry.</summary>
    public Guid? LeaseTimeoutToken { get; set; }

    /// <summary>Timeout token: heartbeat.</summary>
    public Guid? HeartbeatTimeoutToken { get; set; }

    /// <summary>Timeout token: halt acknowledgement.</summary>
    public Guid? HaltAcknowledgementTimeoutToken { get; set; }

    /// <summary>Whether the execution may be running (a grant exists and no end was recorded).</summary>
    public bool IsLive => CurrentState is "Granted" or "Executing" or "Halting";

    /// <inheritdoc />
    public IEnumerable<(string Kind, string Value)> IndexKeys
    {
        get
        {
            if (!IsLive)
            {
                yield break;
            }

            if (Agent.Length > 0)
            {
                yield return (AgentIndex, Agent);
            }

            if (Domain.Length > 0)
            {
                yield return (PeerIndex, Domain);
            }

            if (TargetDomain.Length > 0)
            {
                yield return (PeerIndex, TargetDomain);
            }

            if (CredentialKeyId is { Length: > 0 })
            {
                yield return (KeyIndex, CredentialKeyId);
            }

            if (GrantKeyId is { Length: > 0 })
            {
                yield return (KeyIndex, GrantKeyId);
            }
        }
    }
}
