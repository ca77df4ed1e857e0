using MeshBus.Contracts;

namespace MeshBus.Federation;

/// <summary>Where a relayed message goes.</summary>
public enum RelayDestination
{
    /// <summary>Every pinned peer (announcements such as heartbeats).</summary>
    AllPeers,

    /// <summary>The domain a field of the message names (an endorsement's target).</summary>
    NamedDomain,

    /// <summary>The home domain of the agent the message is for: the peer whose name + <c>/</c> starts the agent subject.</summary>
    AgentHome,

    /// <summary>The peer this domain shares the intent with (remembered when the endorsement crossed, either way).</summary>
    IntentPeer,
}

/// <summary>How a verified inbound message is handed to the local bus.</summary>
public enum LocalDelivery
{
    /// <summary>Published (sagas, Authorize, lineage observers).</summary>
    Publish,

    /// <summary>Sent to the agent's own queue, as local answers are, and published for the lifecycle saga.</summary>
    PublishAndSendToAgent,

    /// <summary>
    /// Sent to the one endpoint the receiving host names for the type, and not published (an inbound endorsement goes to
    /// Authorize's endorsement queue; a published one would look like the domain's own outbound endorsement).
    /// </summary>
    SendToEndpoint,
}

/// <summary>One row of the relay table: a message type that crosses, to whom, for how long, and how it lands.</summary>
/// <param name="Type">The envelope type and the subject's last token (the contract's name).</param>
/// <param name="MessageType">The contract.</param>
/// <param name="TimeToLive">The envelope's lifetime; the receiver refuses longer ones and expired ones (± skew).</param>
/// <param name="Destination">Where it goes.</param>
/// <param name="Delivery">How it lands on the receiver's bus.</param>
/// <param name="Producer">The producing domain the message names: only this domain's own messages leave, and an inbound one must name its sender.</param>
/// <param name="Target">The named domain (<see cref="RelayDestination.NamedDomain"/>), the agent subject (<see cref="RelayDestination.AgentHome"/>, <see cref="LocalDelivery.PublishAndSendToAgent"/>), else null.</param>
/// <param name="IntentId">The intent the message belongs to, when it has one.</param>
/// <param name="RemembersIntent">Crossing (either way) records which peer shares the intent, for <see cref="RelayDestination.IntentPeer"/> rows.</param>
public sealed record RelayRoute(
    string Type,
    Type MessageType,
    TimeSpan TimeToLive,
    RelayDestination Destination,
    LocalDelivery Delivery,
    Func<object, string> Producer,
    Func<object, string?> Target,
    Func<object, Guid?> IntentId,
    bool RemembersIntent = false)
{
    /// <summary>A typed row.</summary>
    public static RelayRoute For<T>(
        TimeSpan timeToLive,
        RelayDestination destination,
        Func<T, string> producer,
        Func<T, string?>? target = null,
        Func<T, Guid?>? intentId = null,
        LocalDelivery delivery = LocalDelivery.Publish,
        bool remembersIntent = false)
        where T : class =>
        new(typeof(T).Name, typeof(T), timeToLive, destination, delivery,
            m => producer((T)m), m => target?.Invoke((T)m), m => intentId?.Invoke((T)m), remembersIntent);
}

/// <summary>
/// Which messages cross the bridge and to whom (docs/federation.md has the same table). A message crosses only when it
/// was produced by this domain (<see cref="RelayRoute.Producer"/> = self), so nothing that arrived over the bridge is
/// relayed again. Issue 18 (governance sync) extends it with <see cref="With"/>.
/// </summary>
public sealed class RelayTable
{
    private readonly Dictionary<string, RelayRoute> _byType;

    /// <summary>A table of <paramref name="routes"/> (one per type).</summary>
    public RelayTable(IEnumerable<RelayRoute> routes) => _byType = routes.ToDictionary(r => r.Type, StringComparer.Ordinal);

    /// <summary>The routes.</summary>
    public IReadOnlyCollection<RelayRoute> Routes => _byType.Values;

    /// <summary>The longest TTL of any row (a missing linkSeq older than this + skew can no longer arrive valid).</summary>
    public TimeSpan MaxTimeToLive => _byType.Values.Max(r => r.TimeToLive);

    /// <summary>The TTL per envelope type, as the envelope check takes it.</summary>
    public IReadOnlyDictionary<string, TimeSpan> TimeToLive => _byType.ToDictionary(p => p.Key, p => p.Value.TimeToLive, StringComparer.Ordinal);

    /// <summary>The row of an envelope type.</summary>
    public RelayRoute? Find(string type) => _byType.GetValueOrDefault(type);

    /// <summary>The row of a contract.</summary>
    public RelayRoute? Find(Type messageType) => _byType.Values.FirstOrDefault(r => r.MessageType == messageType);

    /// <summary>This table with more rows (or rows replaced by type).</summary>
    public RelayTable With(params RelayRoute[] routes) => new(_byType.Values.Where(r => routes.All(n => n.Type != r.Type)).Concat(routes));

    /// <summary>The time-to-live of decisions and execution reports on the bridge.</summary>
    public static readonly TimeSpan DecisionTimeToLive = TimeSpan.FromMinutes(2);

    /// <summary>The time-to-live of a heartbeat (an older one says nothing about freshness).</summary>
    public static readonly TimeSpan HeartbeatTimeToLive = TimeSpan.FromSeconds(30);

    /// <summary>The time-to-live of governance sync statements other than heartbeats (acknowledgements, lapses, restorations).</summary>
    public static readonly TimeSpan GovernanceTimeToLive = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The time-to-live of cosigning traffic: a request or answer that arrives later is dropped, and the next checkpoint
    /// (or the conflict's retry) asks again from the witness's size.
    /// </summary>
    public static readonly TimeSpan CosignTimeToLive = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The cross-domain intent path (DESIGN.md §3): the origin's endorsement to the target; the target's grants,
    /// renewals, denials and halts back to the origin, the agent's reports of the execution to the target; both
    /// domains' heartbeats to every peer (Authorize's freshness check needs them). Governance sync (issue 18): policy
    /// acknowledgements and key sets to every peer (they move the peers' watchdogs; a key set is accepted there only
    /// under the pinned root), and a lapse or restoration of trust in a peer to
    /// that peer, whose Sync then halts its own executions involving this domain.
    /// </summary>
    public static RelayTable Default { get; } = new([
        RelayRoute.For<IntentEndorsed>(DecisionTimeToLive, RelayDestination.NamedDomain, m => m.Domain, m => m.TargetDomain, m => m.IntentId, LocalDelivery.SendToEndpoint, remembersIntent: true),
        RelayRoute.For<GrantIssued>(DecisionTimeToLive, RelayDestination.AgentHome, m => m.Domain, m => m.Agent, m => m.IntentId, LocalDelivery.PublishAndSendToAgent),
        RelayRoute.For<GrantRenewed>(DecisionTimeToLive, RelayDestination.AgentHome, m => m.Domain, m => m.Agent, m => m.IntentId, LocalDelivery.PublishAndSendToAgent),
        RelayRoute.For<GrantDenied>(DecisionTimeToLive, RelayDestination.AgentHome, m => m.Domain, m => m.Agent, m => m.IntentId, LocalDelivery.PublishAndSendToAgent),
        RelayRoute.For<HaltExecution>(DecisionTimeToLive, RelayDestination.IntentPeer, m => m.Domain, intentId: m => m.IntentId),
        RelayRoute.For<ExecutionStarted>(DecisionTimeToLive, RelayDestination.IntentPeer, m => m.Domain, intentId: m => m.IntentId),
        RelayRoute.For<ExecutionHeartbeat>(DecisionTimeToLive, RelayDestination.IntentPeer, m => m.Domain, intentId: m => m.IntentId),
        RelayRoute.For<ExecutionCompleted>(DecisionTimeToLive, RelayDestination.IntentPeer, m => m.Domain, intentId: m => m.IntentId),
        RelayRoute.For<ExecutionHalted>(DecisionTimeToLive, RelayDestination.IntentPeer, m => m.Domain, intentId: m => m.IntentId),
        RelayRoute.For<DomainHeartbeat>(HeartbeatTimeToLive, RelayDestination.AllPeers, m => m.Domain),
        RelayRoute.For<PolicySynced>(GovernanceTimeToLive, RelayDestination.AllPeers, m => m.Domain),
        RelayRoute.For<KeySetPublished>(GovernanceTimeToLive, RelayDestination.AllPeers, m => m.Domain),
        // A federation bundle, from the member whose Sync published it (a domain's own bundles never leave: no producer).
        RelayRoute.For<PolicyPublished>(GovernanceTimeToLive, RelayDestination.AllPeers, m => m.Scope == PolicyScope.Federation ? m.Publisher ?? "" : ""),
        RelayRoute.For<TrustLapsed>(GovernanceTimeToLive, RelayDestination.NamedDomain, m => m.Domain, m => m.Scope == GovernanceScope.Peer ? m.Subject : null),
        RelayRoute.For<TrustRestored>(GovernanceTimeToLive, RelayDestination.NamedDomain, m => m.Domain, m => m.Scope == GovernanceScope.Peer ? m.Subject : null),
        // Witnessing (DESIGN.md §7): a log's cosign request to the one witness it names; the witness's answer to the log.
        RelayRoute.For<CosignRequest>(CosignTimeToLive, RelayDestination.NamedDomain, m => m.Domain, m => m.Witness),
        RelayRoute.For<CheckpointCosigned>(CosignTimeToLive, RelayDestination.NamedDomain, m => m.Domain, m => LogDomain(m.Origin)),
        RelayRoute.For<CosignConflict>(CosignTimeToLive, RelayDestination.NamedDomain, m => m.Domain, m => LogDomain(m.Origin)),
        // Cross-domain evidence: a request to the domain asked, its bundle back to the requester.
        RelayRoute.For<ProofRequest>(CosignTimeToLive, RelayDestination.NamedDomain, m => m.Requester ?? "", m => m.Domain),
        RelayRoute.For<ProofResponse>(CosignTimeToLive, RelayDestination.NamedDomain, m => m.Domain, m => m.Requester),
    ]);

    /// <summary>The domain of a lineage origin (<c>&lt;domain&gt;/lineage</c>), or null for anything else.</summary>
    public static string? LogDomain(string origin) =>
        origin.EndsWith("/lineage", StringComparison.Ordinal) ? origin[..^"/lineage".Length] : null;
}
