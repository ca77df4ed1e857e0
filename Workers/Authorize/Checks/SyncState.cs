using System.Collections.Concurrent;
using MeshBus.Contracts;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>
/// The replica's view of governance sync. For this domain it is in memory and deliberately not shared: each replica must
/// itself have seen a fresh heartbeat before it decides, so a replica cut off from the bus refuses instead of trusting
/// another's view. For a peer it is the per-peer sync state in the domain's database (<see cref="IPeerSyncStore"/>):
/// Sync records each verified heartbeat of the peer that crossed the bridge and the watchdog's lapses, and every replica
/// reads that row on every decision. A peer is known only when its root is pinned in the domain's trust config
/// (<see cref="AuthorizeKeys.Resolver"/>, a <see cref="TrustConfig"/>).
/// </summary>
public sealed class SyncState(
    IOptions<AuthorizeOptions> options,
    IOptions<Hosting.MeshBusOptions> mesh,
    ILoadedGovernance loaded,
    AuthorizeKeys keys,
    IPeerSyncStore peers,
    TimeProvider time) : ISyncState
{
    private readonly ConcurrentDictionary<string, DomainHeartbeat> _heartbeats = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Domain, PolicyScope Scope), PolicySynced> _applied = new();

    /// <inheritdoc />
    public bool Observe(DomainHeartbeat heartbeat)
    {
        // Dated in the future beyond the skew: never kept, so no heartbeat (even a validly signed one from a clock
        // that runs ahead) can hold a domain fresh past its real last heartbeat.
        if (heartbeat.SentAt - time.GetUtcNow() > TimeSpan.FromSeconds(options.Value.ClockSkewSeconds))
        {
            return false;
        }

        // The latest signed issue time wins, whichever replica of the domain's Sync sent it: replicas are interchangeable.
        _heartbeats.AddOrUpdate(heartbeat.Domain, heartbeat, (_, old) => Later(heartbeat, old) ? heartbeat : old);
        return true;
    }

    private static bool Later(DomainHeartbeat candidate, DomainHeartbeat current) =>
        candidate.SentAt > current.SentAt || (candidate.SentAt == current.SentAt && candidate.Sequence > current.Sequence);

    /// <inheritdoc />
    public void Observe(PolicySynced synced)
    {
        // Only what the domain applied to its own policy counts here; peers' acks feed the federation view later.
        if (synced.Domain != synced.Publisher)
        {
            return;
        }

        _applied.AddOrUpdate((synced.Domain, synced.Scope), synced, (_, old) => synced.Epoch > old.Epoch ? synced : old);
    }

    /// <inheritdoc />
    public ValueTask<SyncCheck> CheckAsync(string domain, DateTimeOffset now, CancellationToken cancellationToken) =>
        domain == mesh.Value.Domain ? ValueTask.FromResult(CheckOwn(domain, now)) : new ValueTask<SyncCheck>(CheckPeerAsync(domain, now, cancellationToken));

    private SyncCheck CheckOwn(string domain, DateTimeOffset now)
    {
        if (RecentHeartbeat(domain, now, out var heartbeat) is { } stale)
        {
            return stale;
        }

        if (heartbeat.KeySetSequence != loaded.KeySetSequence)
        {
            return SyncCheck.Stale($"{domain} announces key set {heartbeat.KeySetSequence}, this replica has {loaded.KeySetSequence} loaded");
        }

        var applied = heartbeat.DomainPolicyEpoch;
        if (_applied.TryGetValue((domain, PolicyScope.Domain), out var synced) && synced.Epoch > applied)
        {
            applied = synced.Epoch;
        }

        if (loaded.DomainPolicyEpoch != applied)
        {
            return SyncCheck.Stale($"{domain} applied policy epoch {applied}, this replica has epoch {loaded.DomainPolicyEpoch} loaded");
        }

        return SyncCheck.Fresh;
    }

    /// <summary>
    /// A peer: pinned in the trust config (never transitive), its key set accepted and not expired, trust in it not
    /// lapsed, a recent heartbeat recorded that announces exactly that key set and the federation policy this replica has
    /// loaded. Its own policy epochs are its own business: what this domain relies on from a peer's policy arrives signed
    /// (the endorsement's egress epoch and federation digest).
    /// </summary>
    private async Task<SyncCheck> CheckPeerAsync(string domain, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (keys.Resolver is not TrustConfig trust || !trust.PinnedRoots.ContainsKey(domain))
        {
            return SyncCheck.Unknown($"domain '{domain}' is not a peer in this domain's trust config");
        }

        if (!trust.PeerKeySets.TryGetValue(domain, out var keySet))
        {
            return SyncCheck.Stale($"no key set of {domain} accepted yet");
        }

        if (now > keySet.ExpiresAt)
        {
            return SyncCheck.Stale($"the accepted key set {keySet.Sequence} of {domain} expired at {keySet.ExpiresAt:O}");
        }

        var row = await peers.GetAsync(domain, cancellationToken);
        if (row?.Lapse is { } lapse)
        {
            return SyncCheck.Stale($"trust in {domain} lapsed ({lapse}): {row.LapseDetail}");
        }

        if (row is null || row.HeartbeatSequence == 0)
        {
            return SyncCheck.Stale($"no heartbeat from {domain} recorded yet");
        }

        if (Stale(domain, row.HeartbeatSentAt, now) is { } stale)
        {
            return stale;
        }

        if (row.KeySetSequence != keySet.Sequence)
        {
            return SyncCheck.Stale($"{domain} announces key set {row.KeySetSequence}, this domain has accepted its key set {keySet.Sequence}");
        }

        // Both sides must decide under one federation policy: a new epoch is on its way to one of them (its Sync relays it
        // to every member), so the decision waits for it, and is denied FederationMismatch if it never comes.
        var mine = loaded.FederationPolicyDigest;
        return row.FederationPolicyDigest == mine
            ? SyncCheck.Fresh
            : SyncCheck.FederationMismatch(
                $"{domain} announces federation policy '{Shown(row.FederationPolicyDigest)}', this replica decides under '{Shown(mine)}'");
    }

    private static string Shown(string digest) => digest.Length == 0 ? "none" : digest;

    /// <summary>Null when the domain's last heartbeat is within the bound, else why not (a heartbeat from the future was never kept: <see cref="Observe(DomainHeartbeat)"/>).</summary>
    private SyncCheck? RecentHeartbeat(string domain, DateTimeOffset now, out DomainHeartbeat heartbeat)
    {
        if (!_heartbeats.TryGetValue(domain, out heartbeat!))
        {
            return SyncCheck.Stale($"no heartbeat from {domain} seen yet");
        }

        return Stale(domain, heartbeat.SentAt, now);
    }

    private SyncCheck? Stale(string domain, DateTimeOffset sentAt, DateTimeOffset now)
    {
        var bound = TimeSpan.FromSeconds(options.Value.HeartbeatBoundSeconds);
        var age = now - sentAt;
        return age > bound ? SyncCheck.Stale($"last heartbeat from {domain} is {age.TotalSeconds:0.#} s old (bound {bound.TotalSeconds:0.#} s)") : null;
    }
}
