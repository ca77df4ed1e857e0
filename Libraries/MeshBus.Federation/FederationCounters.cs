using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace MeshBus.Federation;

/// <summary>Why an inbound bridged message was dropped (each is counted and never reaches a consumer).</summary>
public enum DropReason
{
    /// <summary>Not a bridge subject, not an envelope, or a payload that is not the contract its type names.</summary>
    Malformed,

    /// <summary>Larger than the accepted maximum.</summary>
    Oversized,

    /// <summary>The subject's or the envelope's recipient is not this domain.</summary>
    NotAddressedToSelf,

    /// <summary>The sender is not a pinned peer, or its key set has not been accepted.</summary>
    UnknownPeer,

    /// <summary>The signature does not verify with the sender's envelope key (wrong, revoked or tampered).</summary>
    SignatureInvalid,

    /// <summary>The subject's sender or type differs from the signed envelope's.</summary>
    SubjectMismatch,

    /// <summary>The signed message names another producing domain than the envelope's sender.</summary>
    ProducerMismatch,

    /// <summary>Addressed to an agent, domain or intent this domain does not hold with the sender.</summary>
    NotForThisDomain,

    /// <summary>Past its expiry (+ skew), issued in the future, or living longer than its type's TTL.</summary>
    Expired,

    /// <summary>A type the relay table does not carry.</summary>
    UnknownType,

    /// <summary>An envelope id already received from this sender.</summary>
    Replayed,
}

/// <summary>
/// The bridge's counters (also as OpenTelemetry metrics on the <c>MeshBus.Federation</c> meter) and its drop log: a
/// failure is logged once per burst per reason (the first, then a summary of what followed within the burst window), so
/// forged traffic cannot flood the log.
/// </summary>
public sealed class FederationCounters
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "MeshBus.Federation";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> DroppedMetric = Meter.CreateCounter<long>("meshbus.federation.dropped", description: "Bridged messages dropped, by reason");
    private static readonly Counter<long> DeliveredMetric = Meter.CreateCounter<long>("meshbus.federation.delivered", description: "Bridged messages verified and published locally");
    private static readonly Counter<long> RelayedMetric = Meter.CreateCounter<long>("meshbus.federation.relayed", description: "Local messages sealed for a peer");
    private static readonly Counter<long> ResentMetric = Meter.CreateCounter<long>("meshbus.federation.resent", description: "Envelopes published again on a peer's resend request");

    private readonly ConcurrentDictionary<DropReason, long> _dropped = new();
    private readonly ConcurrentDictionary<DropReason, (DateTimeOffset Since, long Suppressed)> _bursts = new();
    private long _delivered;
    private long _relayed;
    private long _resent;
    private long _resendRequests;
    private long _gapsSkipped;

    /// <summary>How long one burst of failures of one reason is logged as one.</summary>
    public TimeSpan BurstWindow { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Drops so far, by reason.</summary>
    public long Dropped(DropReason reason) => _dropped.GetValueOrDefault(reason);

    /// <summary>All drops so far.</summary>
    public long DroppedTotal => _dropped.Values.Sum();

    /// <summary>Messages verified and published on the local bus.</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Envelopes sealed for peers.</summary>
    public long Relayed => Interlocked.Read(ref _relayed);

    /// <summary>Envelopes published again on request.</summary>
    public long Resent => Interlocked.Read(ref _resent);

    /// <summary>Resend requests sent to peers.</summary>
    public long ResendRequests => Interlocked.Read(ref _resendRequests);

    /// <summary>Link holes given up because their messages could no longer be valid.</summary>
    public long GapsSkipped => Interlocked.Read(ref _gapsSkipped);

    internal void Drop(DropReason reason, string detail, string subject, ILogger logger, DateTimeOffset now)
    {
        _dropped.AddOrUpdate(reason, 1, (_, n) => n + 1);
        DroppedMetric.Add(1, new KeyValuePair<string, object?>("reason", reason.ToString()));
        var log = false;
        long suppressed = 0;
        _bursts.AddOrUpdate(reason, _ => { log = true; return (now, 0); }, (_, b) =>
        {
            if (now - b.Since >= BurstWindow)
            {
                log = true;
                suppressed = b.Suppressed;
                return (now, 0);
            }

            return (b.Since, b.Suppressed + 1);
        });
        if (log)
        {
            logger.LogWarning("Bridged message on {Subject} dropped ({Reason}): {Detail}; {Suppressed} more of this reason in the previous burst",
                subject, reason, detail, suppressed);
        }
    }

    internal void CountDelivered()
    {
        Interlocked.Increment(ref _delivered);
        DeliveredMetric.Add(1);
    }

    internal void CountRelayed()
    {
        Interlocked.Increment(ref _relayed);
        RelayedMetric.Add(1);
    }

    internal void CountResent(int n)
    {
        Interlocked.Add(ref _resent, n);
        ResentMetric.Add(n);
    }

    internal void CountResendRequest() => Interlocked.Increment(ref _resendRequests);

    internal void CountGapSkipped() => Interlocked.Increment(ref _gapsSkipped);
}
