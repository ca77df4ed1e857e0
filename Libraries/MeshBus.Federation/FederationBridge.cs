using System.Collections.Concurrent;
using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Trust;
using Microsoft.Extensions.Logging;

namespace MeshBus.Federation;

/// <summary>What the bridge knows about its own domain and its peers.</summary>
public sealed record FederationOptions
{
    /// <summary>This domain.</summary>
    public required string LocalDomain { get; init; }

    /// <summary>The peers (pinned in the trust config); envelopes from anyone else are dropped.</summary>
    public required IReadOnlyCollection<string> Peers { get; init; }

    /// <summary>Tolerated clock difference between domains.</summary>
    public TimeSpan Skew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a linkSeq hole may wait for reordered delivery before a resend is requested.</summary>
    public TimeSpan GapGrace { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The largest accepted envelope.</summary>
    public int MaxBytes { get; init; } = 1024 * 1024;

    /// <summary>How old an unpublished outbound entry must be before the pump publishes it (its relay is still trying before that).</summary>
    public TimeSpan PendingAfter { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>A verified inbound message, ready for the local bus.</summary>
/// <param name="Message">The contract deserialized from exactly the verified payload bytes.</param>
/// <param name="Route">Its relay table row (how it lands).</param>
/// <param name="From">The sending domain.</param>
/// <param name="EnvelopeId">The envelope id (use it as the local message id).</param>
/// <param name="Agent">The agent whose queue also receives it (<see cref="LocalDelivery.PublishAndSendToAgent"/>), else null.</param>
public sealed record BridgedMessage(object Message, RelayRoute Route, string From, Guid EnvelopeId, string? Agent);

/// <summary>The receiving domain's bus, as the bridge hands verified messages to it.</summary>
public interface ILocalBus
{
    /// <summary>Publishes (and, by the route, sends to the agent's queue); throws when the bus did not take it.</summary>
    Task DeliverAsync(BridgedMessage message, CancellationToken cancellationToken);
}

/// <summary>
/// The federation bridge of DESIGN.md §6, the same in a fleet (JetStream) and embedded (in-process): outbound, a local
/// message the relay table sends to a peer is sealed with the domain's envelope key, written to the durable outbound log
/// under the next linkSeq of its link, then published; inbound, an envelope reaches the local bus only after every check
/// (subject, signature with the sender's key set chained to a pinned root, sender = subject = key's domain, recipient =
/// self, the type's TTL ± skew, the producing domain, the recipient's stake, an unseen id). A failure is dropped and
/// counted by reason. LinkSeq holes are repaired from the sender's outbound log.
/// </summary>
public sealed class FederationBridge
{
    /// <summary>The bridge's own control type: "resend linkSeq [from, to] of our link".</summary>
    public const string ResendType = "LinkResend";

    /// <summary>The lifetime of a resend request.</summary>
    public static readonly TimeSpan ResendTimeToLive = TimeSpan.FromMinutes(1);

    /// <summary>The payload encoding of bridged contracts: the bus's JSON (camelCase, enums as integers).</summary>
    public static readonly JsonSerializerOptions PayloadJson = new(JsonSerializerDefaults.Web);

    private readonly FederationOptions _options;
    private readonly RelayTable _table;
    private readonly ISigner _envelopeKey;
    private readonly IKeyResolver _keys;
    private readonly IFederationStore _store;
    private readonly IFederationLink _link;
    private readonly ILocalBus _local;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly EnvelopeOptions _envelopeOptions;
    private readonly string _selfToken;
    private readonly ConcurrentDictionary<(string Peer, long First), DateTimeOffset> _requested = new();

    /// <summary>Builds the bridge of <see cref="FederationOptions.LocalDomain"/>.</summary>
    public FederationBridge(FederationOptions options, RelayTable table, ISigner envelopeKey, IKeyResolver keys, IFederationStore store,
        IFederationLink link, ILocalBus local, TimeProvider time, ILogger<FederationBridge> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(envelopeKey);
        _options = options;
        _table = table;
        _envelopeKey = envelopeKey;
        _keys = keys;
        _store = store;
        _link = link;
        _local = local;
        _time = time;
        _logger = logger;
        _selfToken = Subjects.Token(options.LocalDomain);
        _envelopeOptions = new EnvelopeOptions
        {
            LocalDomain = options.LocalDomain,
            Skew = options.Skew,
            MaxBytes = options.MaxBytes,
            TimeToLive = new Dictionary<string, TimeSpan>(table.TimeToLive) { [ResendType] = ResendTimeToLive },
        };
    }

    /// <summary>Counters and the drop log.</summary>
    public FederationCounters Counters { get; } = new();

    /// <summary>This domain.</summary>
    public string LocalDomain => _options.LocalDomain;

    /// <summary>The relay table.</summary>
    public RelayTable Table => _table;

    /// <summary>The peers a local message goes to by the relay table (none when it does not cross).</summary>
    public async Task<IReadOnlyList<string>> DestinationsAsync(object message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (_table.Find(message.GetType()) is not { } route || route.Producer(message) != LocalDomain)
        {
            // Not a crossing type, or not produced here (e.g. a message that itself arrived over the bridge).
            return [];
        }

        switch (route.Destination)
        {
            case RelayDestination.AllPeers:
                return [.. _options.Peers];
            case RelayDestination.NamedDomain:
                return route.Target(message) is { } named && _options.Peers.Contains(named) ? [named] : [];
            case RelayDestination.AgentHome:
                return route.Target(message) is { } agent && HomeOf(agent) is { } home && home != LocalDomain ? [home] : [];
            case RelayDestination.IntentPeer:
                return route.IntentId(message) is { } intent && await _store.IntentPeerAsync(intent, cancellationToken) is { } peer && _options.Peers.Contains(peer)
                    ? [peer]
                    : [];
            default:
                return [];
        }
    }

    /// <summary>
    /// Relays a local message (identified by <paramref name="sourceId"/>, e.g. its bus message id) to the peers the relay
    /// table names: sealed, logged durably, then published. Returns when the outbound log holds it; a publish that fails
    /// is repeated by <see cref="PublishPendingAsync"/>. Call only after the producing consumer succeeded (the bus's outbox).
    /// </summary>
    public async Task<IReadOnlyList<OutboundEntry>> RelayAsync(object message, string sourceId, CancellationToken cancellationToken)
    {
        var peers = await DestinationsAsync(message, cancellationToken);
        if (peers.Count == 0)
        {
            return [];
        }

        var route = _table.Find(message.GetType())!;
        var payload = JsonSerializer.SerializeToUtf8Bytes(message, route.MessageType, PayloadJson);
        var entries = new List<OutboundEntry>();
        foreach (var peer in peers)
        {
            var entry = await _store.AppendOutboundAsync(peer, sourceId, seq => Seal(peer, seq, route.Type, route.TimeToLive, payload), cancellationToken);
            if (route.RemembersIntent && route.IntentId(message) is { } intent)
            {
                await _store.RememberIntentAsync(intent, peer, entry.ExpiresAt + _options.Skew + KeepIntentFor, cancellationToken);
            }

            Counters.CountRelayed();
            entries.Add(entry);
            await TryPublishAsync(entry, cancellationToken);
        }

        return entries;
    }

    /// <summary>How long after an endorsement the intent's peer is remembered (longer than any lease and its renewals).</summary>
    public static TimeSpan KeepIntentFor { get; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Publishes what the outbound log holds that the link has not acknowledged yet (after a NATS outage); returns how many
    /// went out. A link's entries go in linkSeq order and stop at its first failure; other peers' entries still go.
    /// </summary>
    public async Task<int> PublishPendingAsync(CancellationToken cancellationToken)
    {
        var sent = 0;
        var now = _time.GetUtcNow();
        var failed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in await _store.PendingAsync(now, now - _options.PendingAfter, 256, cancellationToken))
        {
            // One unreachable peer (its stream missing, its publishes refused) must not hold back the links to the others.
            if (failed.Contains(entry.Peer) || !await TryPublishAsync(entry, cancellationToken))
            {
                failed.Add(entry.Peer);
                continue;
            }

            sent++;
        }

        return sent;
    }

    /// <summary>Asks peers to resend linkSeq holes that waited past the grace time, and gives up holes that can no longer be filled.</summary>
    public async Task RepairGapsAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        foreach (var gap in await _store.GapsAsync(cancellationToken))
        {
            var waited = now - gap.Since;
            if (waited > _table.MaxTimeToLive + _options.Skew + _options.Skew)
            {
                // Whatever was there has expired: it would be refused if it came now.
                _logger.LogWarning("LinkSeq {First}..{Last} from {Peer} never arrived and has expired; skipped", gap.FirstMissing, gap.LastMissing, gap.Peer);
                await _store.SkipAsync(gap.Peer, gap.LastMissing, cancellationToken);
                Counters.CountGapSkipped();
                continue;
            }

            if (waited < _options.GapGrace
                || (_requested.TryGetValue((gap.Peer, gap.FirstMissing), out var last) && now - last < _options.GapGrace))
            {
                continue;
            }

            _requested[(gap.Peer, gap.FirstMissing)] = now;
            var payload = JsonSerializer.SerializeToUtf8Bytes(new ResendRequest(gap.FirstMissing, gap.LastMissing), PayloadJson);
            var sealedEnvelope = Seal(gap.Peer, 0, ResendType, ResendTimeToLive, payload);
            try
            {
                await _link.PublishAsync(Subjects.For(gap.Peer, LocalDomain, ResendType), sealedEnvelope.Id.ToString("D"), sealedEnvelope.Wire, cancellationToken);
                Counters.CountResendRequest();
                _logger.LogInformation("Asked {Peer} to resend linkSeq {First}..{Last}", gap.Peer, gap.FirstMissing, gap.LastMissing);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogWarning(e, "Resend request to {Peer} not published; asking again later", gap.Peer);
            }
        }
    }

    /// <summary>Deletes seen ids, outbound entries and intent routes that can no longer matter.</summary>
    public Task PruneAsync(CancellationToken cancellationToken) => _store.PruneAsync(_time.GetUtcNow(), cancellationToken);

    /// <summary>
    /// Handles one inbound message: checks it and hands exactly the verified payload to the local bus, or drops and counts
    /// it. Throws only when the local bus did not take a verified message (the link then delivers it again).
    /// </summary>
    public async Task ReceiveAsync(LinkMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var now = _time.GetUtcNow();
        if (message.Data.Length > _options.MaxBytes)
        {
            Drop(DropReason.Oversized, $"{message.Data.Length} bytes", message.Subject, now);
            return;
        }

        if (!Subjects.TryParse(message.Subject, out var toToken, out var fromToken, out var subjectType))
        {
            Drop(DropReason.Malformed, "not a bridge subject", message.Subject, now);
            return;
        }

        if (toToken != _selfToken)
        {
            Drop(DropReason.NotAddressedToSelf, "subject addressed to " + toToken, message.Subject, now);
            return;
        }

        var verified = Envelopes.Verify(message.Data.Span, _keys, _envelopeOptions, now);
        if (!verified.IsValid)
        {
            Drop(Classify(verified.Reason, verified.Detail), verified.Detail, message.Subject, now);
            return;
        }

        var envelope = verified.Value!;
        if (Subjects.Token(envelope.From) != fromToken || envelope.Type != subjectType)
        {
            Drop(DropReason.SubjectMismatch, $"signed by {envelope.From} as {envelope.Type}, published as {fromToken}/{subjectType}", message.Subject, now);
            return;
        }

        if (envelope.From == LocalDomain || !_options.Peers.Contains(envelope.From))
        {
            Drop(DropReason.UnknownPeer, envelope.From + " is not a peer", message.Subject, now);
            return;
        }

        if (envelope.Type == ResendType)
        {
            await ResendAsync(envelope, message.Subject, now, cancellationToken);
            return;
        }

        var route = _table.Find(envelope.Type)!;
        object? payload;
        try
        {
            payload = JsonSerializer.Deserialize(envelope.Payload.Span, route.MessageType, PayloadJson);
        }
        catch (JsonException e)
        {
            payload = null;
            _logger.LogDebug(e, "Payload of {Type} from {From} does not parse", envelope.Type, envelope.From);
        }

        if (payload is null)
        {
            Drop(DropReason.Malformed, $"payload is not a {envelope.Type}", message.Subject, now);
            await RecordAsync(envelope, now, cancellationToken);
            return;
        }

        if (route.Producer(payload) != envelope.From)
        {
            Drop(DropReason.ProducerMismatch, $"{envelope.From} sent a {envelope.Type} of {route.Producer(payload)}", message.Subject, now);
            await RecordAsync(envelope, now, cancellationToken);
            return;
        }

        if (await StakeProblemAsync(route, payload, envelope.From, cancellationToken) is { } stake)
        {
            Drop(DropReason.NotForThisDomain, stake, message.Subject, now);
            await RecordAsync(envelope, now, cancellationToken);
            return;
        }

        // Not cancelled by a stopping replica: a stop arriving while the row commits would report it as not written,
        // the envelope would go unacknowledged, and its redelivery (to this or another replica) would be dropped as a
        // replay although no bus ever had it. The store's command timeout still bounds the call.
        if (!await _store.TryMarkSeenAsync(envelope.From, envelope.Id, envelope.ExpiresAt + _options.Skew, CancellationToken.None))
        {
            Drop(DropReason.Replayed, $"envelope {envelope.Id} from {envelope.From} was already received", message.Subject, now);
            // Seen means delivered: its linkSeq counts as received (else a replica stopped before recording it leaves a hole).
            await RecordAsync(envelope, now, cancellationToken);
            return;
        }

        try
        {
            if (route.RemembersIntent && route.IntentId(payload) is { } intent)
            {
                await _store.RememberIntentAsync(intent, envelope.From, envelope.ExpiresAt + _options.Skew + KeepIntentFor, cancellationToken);
            }

            var agent = route.Delivery == LocalDelivery.PublishAndSendToAgent ? route.Target(payload) : null;
            await _local.DeliverAsync(new BridgedMessage(payload, route, envelope.From, envelope.Id, agent), cancellationToken);
        }
        catch
        {
            // Not handed over: the link delivers it again, and then it must not count as a replay.
            await _store.ForgetSeenAsync(envelope.From, envelope.Id, CancellationToken.None);
            throw;
        }

        Counters.CountDelivered();
        await RecordAsync(envelope, now, cancellationToken);
    }

    /// <summary>Runs the inbound consumer and the outbound pump, gap repair and pruning until cancelled.</summary>
    public async Task RunAsync(TimeSpan maintenanceInterval, CancellationToken cancellationToken)
    {
        await _store.InitializeAsync(cancellationToken);
        var receive = _link.ReceiveAsync(ReceiveAsync, cancellationToken);
        var maintain = MaintainAsync(maintenanceInterval, cancellationToken);
        await Task.WhenAll(receive, maintain);
    }

    private async Task MaintainAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, _time);
        var lastPrune = _time.GetUtcNow();
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            try
            {
                await PublishPendingAsync(cancellationToken);
                await RepairGapsAsync(cancellationToken);
                if (_time.GetUtcNow() - lastPrune > TimeSpan.FromMinutes(1))
                {
                    lastPrune = _time.GetUtcNow();
                    await PruneAsync(cancellationToken);
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // A timeout inside a store or link call (an OperationCanceledException of its own) must not end the pump.
                _logger.LogWarning(e, "Bridge maintenance of {Domain} failed; retrying on the next tick", LocalDomain);
            }
        }
    }

    private string? HomeOf(string agent) =>
        _options.Peers.Append(LocalDomain).Where(d => agent.StartsWith(d + "/", StringComparison.Ordinal)).MaxBy(d => d.Length);

    /// <summary>Whether this domain holds what the message is about with its sender (an agent of ours, us, an intent we share with it).</summary>
    private async Task<string?> StakeProblemAsync(RelayRoute route, object payload, string from, CancellationToken ct)
    {
        switch (route.Destination)
        {
            case RelayDestination.NamedDomain when route.Target(payload) != LocalDomain:
                return $"names {route.Target(payload)}, not {LocalDomain}";
            case RelayDestination.AgentHome when route.Target(payload) is not { } agent || HomeOf(agent) != LocalDomain:
                return $"agent {route.Target(payload)} is not a subject of {LocalDomain}";
            case RelayDestination.IntentPeer:
                var intent = route.IntentId(payload);
                var peer = intent is null ? null : await _store.IntentPeerAsync(intent.Value, ct);
                return peer == from ? null : $"intent {intent} is not shared with {from}";
            default:
                return null;
        }
    }

    private async Task ResendAsync(Envelope envelope, string subject, DateTimeOffset now, CancellationToken ct)
    {
        ResendRequest? request;
        try
        {
            request = JsonSerializer.Deserialize<ResendRequest>(envelope.Payload.Span, PayloadJson);
        }
        catch (JsonException)
        {
            request = null;
        }

        if (request is null || request.From < 1 || request.To < request.From)
        {
            Drop(DropReason.Malformed, "resend request without a valid range", subject, now);
            return;
        }

        if (!await _store.TryMarkSeenAsync(envelope.From, envelope.Id, envelope.ExpiresAt + _options.Skew, ct))
        {
            Drop(DropReason.Replayed, $"resend request {envelope.Id} was already handled", subject, now);
            return;
        }

        var entries = await _store.OutboundRangeAsync(envelope.From, request.From, request.To, now, ct);
        foreach (var entry in entries)
        {
            await _link.PublishAsync(Subjects.For(entry.Peer, LocalDomain, entry.Type), entry.Id.ToString("D"), entry.Wire, ct);
            await _store.MarkPublishedAsync(entry.Peer, entry.LinkSeq, ct);
        }

        Counters.CountResent(entries.Count);
        _logger.LogInformation("{Peer} asked for linkSeq {From}..{To}: resent {Count} from the outbound log", envelope.From, request.From, request.To, entries.Count);
    }

    private Task RecordAsync(Envelope envelope, DateTimeOffset now, CancellationToken ct) =>
        envelope.LinkSeq > 0 ? _store.RecordReceivedAsync(envelope.From, envelope.LinkSeq, now, ct) : Task.CompletedTask;

    private OutboundEntry Seal(string peer, long linkSeq, string type, TimeSpan ttl, byte[] payload)
    {
        var issued = DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds());
        var envelope = new Envelope(LocalDomain, peer, linkSeq, Guid.NewGuid(), type, issued, issued + ttl, payload);
        return new OutboundEntry(peer, linkSeq, envelope.Id, type, Envelopes.Seal(envelope, _envelopeKey).ToWire(), envelope.ExpiresAt);
    }

    private async Task<bool> TryPublishAsync(OutboundEntry entry, CancellationToken ct)
    {
        try
        {
            await _link.PublishAsync(Subjects.For(entry.Peer, LocalDomain, entry.Type), entry.Id.ToString("D"), entry.Wire, ct);
            await _store.MarkPublishedAsync(entry.Peer, entry.LinkSeq, ct);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // The outbound log holds it; the pump publishes it when the link is back.
            _logger.LogWarning("Envelope {LinkSeq} to {Peer} not published yet ({Error}); kept in the outbound log", entry.LinkSeq, entry.Peer, e.Message);
            return false;
        }
    }

    private void Drop(DropReason reason, string detail, string subject, DateTimeOffset now) => Counters.Drop(reason, detail, subject, _logger, now);

    private static DropReason Classify(GovernanceReason reason, string detail) => reason switch
    {
        GovernanceReason.UnknownDomain => DropReason.UnknownPeer,
        GovernanceReason.SignatureInvalid or GovernanceReason.KeyRevoked => DropReason.SignatureInvalid,
        GovernanceReason.SyncStale when detail.StartsWith("envelope expired", StringComparison.Ordinal) => DropReason.Expired,
        GovernanceReason.SyncStale => DropReason.UnknownPeer, // the sender's key set itself expired
        GovernanceReason.MalformedInput when detail.StartsWith("envelope addressed to", StringComparison.Ordinal) => DropReason.NotAddressedToSelf,
        GovernanceReason.MalformedInput when detail.StartsWith("unknown envelope type", StringComparison.Ordinal) => DropReason.UnknownType,
        GovernanceReason.MalformedInput when detail.StartsWith("envelope lifetime", StringComparison.Ordinal) || detail.Contains("future", StringComparison.Ordinal) => DropReason.Expired,
        GovernanceReason.MalformedInput when detail.StartsWith("envelope larger", StringComparison.Ordinal) => DropReason.Oversized,
        _ => DropReason.Malformed,
    };

    private sealed record ResendRequest(long From, long To);
}
