using System.Security.Cryptography;
using System.Text;
using MeshBus.Contracts;

namespace MeshBus.Workers.Sync.Watchdog;

/// <summary>Sync-internal: a verified, consistent heartbeat or acknowledgement of a peer was recorded (moves its watchdog's deadline).</summary>
/// <param name="WatchdogId">The peer's watchdog (<see cref="PeerWatchdog.IdOf"/>).</param>
/// <param name="Peer">The peer domain.</param>
/// <param name="SignedAt">The statement's signed time; the deadline is this plus the stall bound.</param>
/// <param name="What">Which statement, for logs and lineage (e.g. <c>heartbeat 1733450000123</c>).</param>
public sealed record PeerSyncProgressed(Guid WatchdogId, string Peer, DateTimeOffset SignedAt, string What);

/// <summary>Sync-internal: a peer signed statements that contradict each other (trust lapses with <paramref name="Reason"/>).</summary>
/// <param name="WatchdogId">The peer's watchdog.</param>
/// <param name="Peer">The peer domain.</param>
/// <param name="Reason">The lapse reason.</param>
/// <param name="Detail">Which statements contradict which.</param>
public sealed record PeerSyncContradicted(Guid WatchdogId, string Peer, GovernanceReason Reason, string Detail);

/// <summary>
/// Sync-internal, at every Sync start: a watchdog schedules its pending deadline again. A deadline scheduled on the
/// in-memory transport (embedded mode) does not outlive the process, though the watchdog's state does; on Quartz it does,
/// and scheduling it again replaces it with the same time.
/// </summary>
/// <param name="WatchdogId">The watchdog (a peer's or the federation's).</param>
public sealed record WatchdogRearm(Guid WatchdogId);

/// <summary>Scheduled: the peer's watchdog deadline is due.</summary>
/// <param name="WatchdogId">The peer's watchdog.</param>
public sealed record PeerSyncDeadlineDue(Guid WatchdogId);

/// <summary>The watchdog of a peer: one instance per peer, the same id on every replica.</summary>
public static class PeerWatchdog
{
    /// <summary>The watchdog id of <paramref name="peer"/>: a name-based id, so every replica and restart finds the same instance.</summary>
    public static Guid IdOf(string peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("meshbus-peer-watchdog/v1\n" + peer));
        return new Guid(hash.AsSpan(0, 16));
    }

    /// <summary>The id of the halt of executions relying on <paramref name="keyId"/> of <paramref name="peer"/> (one per revoked key).</summary>
    public static Guid KeyHaltIdOf(string peer, string keyId)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"meshbus-key-halt/v1\n{peer}\n{keyId}"));
        return new Guid(hash.AsSpan(0, 16));
    }

    /// <summary>The id of the <paramref name="lapse"/>-th scoped halt of the peer (a redelivered lapse orders the same halt).</summary>
    public static Guid HaltIdOf(string peer, int lapse)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"meshbus-peer-halt/v1\n{peer}\n{lapse}"));
        return new Guid(hash.AsSpan(0, 16));
    }
}
