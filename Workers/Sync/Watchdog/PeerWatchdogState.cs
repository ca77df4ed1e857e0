using MassTransit;
using MeshBus.Contracts;

namespace MeshBus.Workers.Sync.Watchdog;

/// <summary>One peer's sync watchdog, stored durably (shared by every Sync replica of the domain).</summary>
public sealed class PeerWatchdogState : SagaStateMachineInstance, ISagaVersion
{
    /// <summary><see cref="PeerWatchdog.IdOf"/> of the peer.</summary>
    public Guid CorrelationId { get; set; }

    /// <summary>Optimistic concurrency version: two replicas never both apply one event.</summary>
    public int Version { get; set; }

    /// <summary>The state's name.</summary>
    public string CurrentState { get; set; } = "";

    /// <summary>The peer domain.</summary>
    public string Peer { get; set; } = "";

    /// <summary>The signed time of the latest good statement.</summary>
    public DateTimeOffset? LastSignedAt { get; set; }

    /// <summary>Which statement that was.</summary>
    public string LastStatement { get; set; } = "";

    /// <summary>When synchronization counts as stalled: the latest good statement's signed time plus the stall bound.</summary>
    public DateTimeOffset? Deadline { get; set; }

    /// <summary>The scheduled deadline message.</summary>
    public Guid? DeadlineToken { get; set; }

    /// <summary>How many times trust in the peer lapsed (numbers the scoped halts).</summary>
    public int Lapses { get; set; }

    /// <summary>Why trust is lapsed now (while <c>Lapsed</c>).</summary>
    public GovernanceReason LapseReason { get; set; }

    /// <summary>The lapse's explanation.</summary>
    public string LapseDetail { get; set; } = "";
}
