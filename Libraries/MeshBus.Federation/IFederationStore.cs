using MeshBus.Trust;

namespace MeshBus.Federation;

/// <summary>A sealed envelope in the sender's durable outbound log.</summary>
/// <param name="Peer">The receiving domain.</param>
/// <param name="LinkSeq">Its sequence on the (self, peer) link.</param>
/// <param name="Id">The envelope id (also the <c>Nats-Msg-Id</c>).</param>
/// <param name="Type">The envelope type.</param>
/// <param name="Wire">The exact wire bytes.</param>
/// <param name="ExpiresAt">When the receiver stops accepting it.</param>
public sealed record OutboundEntry(string Peer, long LinkSeq, Guid Id, string Type, byte[] Wire, DateTimeOffset ExpiresAt);

/// <summary>A hole in what a peer sent on its link to this domain.</summary>
/// <param name="Peer">The sending domain.</param>
/// <param name="FirstMissing">The first missing linkSeq.</param>
/// <param name="LastMissing">The last missing linkSeq before the next one received.</param>
/// <param name="Since">When the next one was received (how long the hole has been waiting).</param>
public sealed record LinkGap(string Peer, long FirstMissing, long LastMissing, DateTimeOffset Since);

/// <summary>
/// The bridge's durable state, shared by every Sync replica of a domain: the outbound log (the durable copy resends are
/// answered from), the per-link sequences, the seen envelope ids, the received linkSeqs and which peer shares an intent.
/// </summary>
public interface IFederationStore : ISeenIdStore
{
    /// <summary>Creates the tables when missing.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Appends an envelope for <paramref name="peer"/> produced from the local message <paramref name="sourceId"/>: the next
    /// linkSeq of the link is passed to <paramref name="seal"/>. Idempotent by (peer, source): a redelivered source message
    /// gets the entry stored the first time, so it keeps its linkSeq and envelope id.
    /// </summary>
    Task<OutboundEntry> AppendOutboundAsync(string peer, string sourceId, Func<long, OutboundEntry> seal, CancellationToken cancellationToken);

    /// <summary>Marks an entry as acknowledged by the link (JetStream).</summary>
    Task MarkPublishedAsync(string peer, long linkSeq, CancellationToken cancellationToken);

    /// <summary>Entries not yet acknowledged by the link, not yet expired and logged before <paramref name="createdBefore"/> (younger ones are still being published by their relay), oldest first.</summary>
    Task<IReadOnlyList<OutboundEntry>> PendingAsync(DateTimeOffset now, DateTimeOffset createdBefore, int max, CancellationToken cancellationToken);

    /// <summary>The unexpired entries of the link to <paramref name="peer"/> in [<paramref name="from"/>, <paramref name="to"/>].</summary>
    Task<IReadOnlyList<OutboundEntry>> OutboundRangeAsync(string peer, long from, long to, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Forgets a seen id again (its message could not be handed to the local bus and will be redelivered).</summary>
    Task ForgetSeenAsync(string from, Guid id, CancellationToken cancellationToken);

    /// <summary>Records that <paramref name="linkSeq"/> of <paramref name="peer"/>'s link arrived.</summary>
    Task RecordReceivedAsync(string peer, long linkSeq, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Advances each link past what arrived in order and returns the holes left.</summary>
    Task<IReadOnlyList<LinkGap>> GapsAsync(CancellationToken cancellationToken);

    /// <summary>Gives a hole up: its messages can no longer arrive within their TTL.</summary>
    Task SkipAsync(string peer, long throughLinkSeq, CancellationToken cancellationToken);

    /// <summary>Remembers that <paramref name="peer"/> shares <paramref name="intentId"/> until <paramref name="keepUntil"/>.</summary>
    Task RememberIntentAsync(Guid intentId, string peer, DateTimeOffset keepUntil, CancellationToken cancellationToken);

    /// <summary>The peer sharing an intent, if any.</summary>
    Task<string?> IntentPeerAsync(Guid intentId, CancellationToken cancellationToken);

    /// <summary>Deletes seen ids, outbound entries and intent routes past their keep-until time.</summary>
    Task PruneAsync(DateTimeOffset now, CancellationToken cancellationToken);
}
