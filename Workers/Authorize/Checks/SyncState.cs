using System.Collections.Concurrent;
using MeshBus.Contracts;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>
/// The replica's in-memory view of governance sync. Deliberately not shared: each replica must itself have seen a fresh
/// heartbeat before it decides, so a replica cut off from the bus refuses instead of trusting another's view.
/// </summary>
public sealed class SyncState(IOptions<AuthorizeOptions> options, IOptions<Hosting.MeshBusOptions> mesh, ILoadedGovernance loaded) : ISyncState
{
    private readonly ConcurrentDictionary<string, DomainHeartbeat> _heartbeats = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Domain, PolicyScope Scope), PolicySynced> _applied = new();

    /// <inheritdoc />
    public void Observe(DomainHeartbeat heartbeat) =>
        _heartbeats.AddOrUpdate(heartbeat.Domain, heartbeat, (_, old) => heartbeat.Sequence > old.Sequence ? heartbeat : old);

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
    public SyncCheck Check(string domain, DateTimeOffset now)
    {
        if (domain != mesh.Value.Domain)
        {
            // Peers join the trust config with the federation work; until then only the own domain is known.
            return SyncCheck.Unknown($"domain '{domain}' is not in this domain's trust config");
        }

        if (!_heartbeats.TryGetValue(domain, out var heartbeat))
        {
            return SyncCheck.Stale($"no heartbeat from {domain} seen yet");
        }

        var bound = TimeSpan.FromSeconds(options.Value.HeartbeatBoundSeconds);
        var age = now - heartbeat.SentAt;
        if (age > bound)
        {
            return SyncCheck.Stale($"last heartbeat from {domain} is {age.TotalSeconds:0.#} s old (bound {bound.TotalSeconds:0.#} s)");
        }

        if (age < -TimeSpan.FromSeconds(options.Value.ClockSkewSeconds))
        {
            return SyncCheck.Stale($"heartbeat from {domain} is dated {-age.TotalSeconds:0.#} s in the future");
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
}
