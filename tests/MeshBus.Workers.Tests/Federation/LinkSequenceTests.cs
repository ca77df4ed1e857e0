using System.Collections.Concurrent;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Trust;
using MeshBus.Workers.Tests.Authorize;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Federation;

/// <summary>LinkSeq order and gaps: a lost envelope is repaired from the sender's outbound log, not from the link.</summary>
public sealed class LinkSequenceTests
{
    private const string A = "a.example/prod";
    private const string B = "b.example/prod";

    private sealed class RecordingBus : ILocalBus
    {
        public ConcurrentQueue<BridgedMessage> Delivered { get; } = new();

        public Task DeliverAsync(BridgedMessage message, CancellationToken cancellationToken)
        {
            Delivered.Enqueue(message);
            return Task.CompletedTask;
        }
    }

    /// <summary>Loses chosen publishes (reporting success), as a link that lost a message would.</summary>
    private sealed class LossyLink(IFederationLink inner) : IFederationLink
    {
        public int DropPublishNumber { get; set; }

        private int _publishes;

        public Task PublishAsync(string subject, string messageId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            Interlocked.Increment(ref _publishes) == DropPublishNumber ? Task.CompletedTask : inner.PublishAsync(subject, messageId, data, cancellationToken);

        public Task ReceiveAsync(Func<LinkMessage, CancellationToken, Task> handler, CancellationToken cancellationToken) => inner.ReceiveAsync(handler, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private sealed record Side(FederationBridge Bridge, RecordingBus Bus, LossyLink Link);

    private static Side Bridge(string self, string peer, FederatedDomain selfKeys, TrustConfig trust, InProcessFederationNetwork network, TimeProvider time)
    {
        var bus = new RecordingBus();
        var link = new LossyLink(network.LinkFor(self));
        var store = SqlFederationStore.Sqlite(Path.Combine(Path.GetTempPath(), "meshbus-fed-" + Guid.NewGuid().ToString("N") + ".db"), time);
        var bridge = new FederationBridge(new FederationOptions { LocalDomain = self, Peers = [peer], GapGrace = TimeSpan.FromSeconds(2) },
            RelayTable.Default, selfKeys.Signers[KeyUsage.Envelope], trust, store, link, bus, time, NullLogger<FederationBridge>.Instance);
        return new Side(bridge, bus, link);
    }

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!condition())
        {
            await Task.Delay(20, bound.Token).ContinueWith(t => Assert.False(t.IsCanceled, "timed out waiting for " + what), TaskScheduler.Default);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_lost_envelope_is_resent_from_the_senders_outbound_log_after_a_gap_shows()
    {
        var a = FederatedDomain.Create(A);
        var b = FederatedDomain.Create(B);
        var time = new FakeTimeProvider(a.Start);
        var network = new InProcessFederationNetwork();
        var sender = Bridge(A, B, a, a.TrustWith([b]), network, time);
        var receiver = Bridge(B, A, b, b.TrustWith([a]), network, time);
        using var stop = new CancellationTokenSource();
        var loops = Task.WhenAll(
            sender.Bridge.RunAsync(TimeSpan.FromHours(1), stop.Token),
            receiver.Bridge.RunAsync(TimeSpan.FromHours(1), stop.Token));
        sender.Link.DropPublishNumber = 2;

        for (var i = 1; i <= 3; i++)
        {
            await sender.Bridge.RelayAsync(new DomainHeartbeat(A, i, time.GetUtcNow(), 1, 1, 1, ""), "hb-" + i, CancellationToken.None);
        }

        await EventuallyAsync(() => receiver.Bus.Delivered.Count == 2, "the two envelopes that were not lost");
        await receiver.Bridge.RepairGapsAsync(CancellationToken.None);
        Assert.Equal(0, receiver.Bridge.Counters.ResendRequests); // within the grace time reordering is still possible

        time.Advance(TimeSpan.FromSeconds(3));
        await receiver.Bridge.RepairGapsAsync(CancellationToken.None);

        await EventuallyAsync(() => receiver.Bus.Delivered.Count == 3, "the lost envelope, resent");
        Assert.Equal(1, receiver.Bridge.Counters.ResendRequests);
        Assert.Equal(1, sender.Bridge.Counters.Resent);
        Assert.Equal([1L, 2L, 3L], receiver.Bus.Delivered.Select(m => ((DomainHeartbeat)m.Message).Sequence).Order());
        // Repaired: no hole is left, so nothing more is asked.
        time.Advance(TimeSpan.FromSeconds(3));
        await receiver.Bridge.RepairGapsAsync(CancellationToken.None);
        Assert.Equal(1, receiver.Bridge.Counters.ResendRequests);
        Assert.Equal(0, receiver.Bridge.Counters.DroppedTotal);
        stop.Cancel();
        await loops.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_redelivered_source_message_keeps_its_linkSeq_and_envelope_id()
    {
        var a = FederatedDomain.Create(A);
        var b = FederatedDomain.Create(B);
        var time = new FakeTimeProvider(a.Start);
        var network = new InProcessFederationNetwork();
        var sender = Bridge(A, B, a, a.TrustWith([b]), network, time);
        var heartbeat = new DomainHeartbeat(A, 1, time.GetUtcNow(), 1, 1, 1, "");

        var first = Assert.Single(await sender.Bridge.RelayAsync(heartbeat, "same-source", CancellationToken.None));
        var again = Assert.Single(await sender.Bridge.RelayAsync(heartbeat, "same-source", CancellationToken.None));
        var next = Assert.Single(await sender.Bridge.RelayAsync(heartbeat with { Sequence = 2 }, "next-source", CancellationToken.None));

        Assert.Equal(first.Id, again.Id);
        Assert.Equal(first.LinkSeq, again.LinkSeq);
        Assert.Equal(first.LinkSeq + 1, next.LinkSeq);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_message_that_arrived_over_the_bridge_is_not_relayed_again()
    {
        var a = FederatedDomain.Create(A);
        var b = FederatedDomain.Create(B);
        var time = new FakeTimeProvider(a.Start);
        var sender = Bridge(A, B, a, a.TrustWith([b]), new InProcessFederationNetwork(), time);

        Assert.Empty(await sender.Bridge.RelayAsync(new DomainHeartbeat(B, 1, time.GetUtcNow(), 1, 1, 1, ""), "from-b", CancellationToken.None));
        Assert.Empty(await sender.Bridge.RelayAsync(new GrantIssued(Guid.NewGuid(), A, A + "/agents/local", "jws", 1, time.GetUtcNow()), "local-grant", CancellationToken.None));
    }
}
