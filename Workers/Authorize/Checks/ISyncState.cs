using MeshBus.Contracts;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>Whether this replica's view of a domain's governance is fresh enough to decide on.</summary>
/// <param name="IsFresh">True when every check passed.</param>
/// <param name="IsKnown">False when the domain is not one this replica governs or federates with.</param>
/// <param name="Detail">Which check failed (empty when fresh).</param>
/// <param name="Reason">The denial's reason once the wait for freshness is over (<see cref="GovernanceReason.SyncStale"/>, or
/// <see cref="GovernanceReason.FederationMismatch"/> when the domains decide under different federation policies).</param>
public readonly record struct SyncCheck(bool IsFresh, bool IsKnown, string Detail, GovernanceReason Reason = GovernanceReason.SyncStale)
{
    /// <summary>Fresh.</summary>
    public static SyncCheck Fresh { get; } = new(true, true, "");

    /// <summary>Known but not fresh.</summary>
    public static SyncCheck Stale(string detail) => new(false, true, detail);

    /// <summary>Known and heard from, but under another federation policy than the one loaded here: waits like a stale one.</summary>
    public static SyncCheck FederationMismatch(string detail) => new(false, true, detail, GovernanceReason.FederationMismatch);

    /// <summary>Not a domain this replica knows.</summary>
    public static SyncCheck Unknown(string detail) => new(false, false, detail);
}

/// <summary>
/// The governance freshness every decision checks (DESIGN.md §3 phase 2): the last heartbeat of a domain is within
/// the bound, the key set sequence it announces is the one loaded here, and the policy epoch loaded here is the one
/// applied. For this domain it is fed by <see cref="DomainHeartbeat"/> and <see cref="PolicySynced"/>, which every
/// replica consumes on an endpoint of its own; for a peer it is the per-peer sync state Sync records in the domain's
/// database (<see cref="MeshBus.Persistence.IPeerSyncStore"/>), which every replica reads on every decision.
/// </summary>
public interface ISyncState
{
    /// <summary>
    /// Records a verified heartbeat: keeps the one with the latest signed <c>SentAt</c> per domain (any Sync replica's);
    /// false (nothing kept) when it is dated in the future beyond the clock skew.
    /// </summary>
    bool Observe(DomainHeartbeat heartbeat);

    /// <summary>Records an applied policy version (keeps the highest epoch per domain and scope).</summary>
    void Observe(PolicySynced synced);

    /// <summary>Checks a domain's freshness at <paramref name="now"/>.</summary>
    ValueTask<SyncCheck> CheckAsync(string domain, DateTimeOffset now, CancellationToken cancellationToken);
}
