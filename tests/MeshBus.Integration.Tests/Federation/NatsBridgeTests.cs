using System.Collections.Concurrent;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.Logging.Abstractions;
using NATS.Client.JetStream;
using NATS.Net;
using Xunit;

namespace MeshBus.Integration.Tests.Federation;

/// <summary>
/// The bridge over real NATS JetStream with the per-domain NATS users of scripts/nats-test-config.sh and a PostgreSQL
/// database per domain (the fleet's store, shared by that domain's Sync replicas).
/// </summary>
[Collection("nats-postgres")]
[Trait("Category", "Integration")]
public sealed class NatsBridgeTests(NatsFixture nats, PostgresFixture postgres) : IAsyncLifetime
{
    private readonly List<string> _databases = [];
    private readonly List<IAsyncDisposable> _disposables = [];

    private sealed class RecordingBus : ILocalBus
    {
        public ConcurrentQueue<BridgedMessage> Delivered { get; } = new();

        public Task DeliverAsync(BridgedMessage message, CancellationToken cancellationToken)
        {
            Delivered.Enqueue(message);
            return Task.CompletedTask;
        }
    }

    /// <summary>
    /// A link whose first publishes lose their acknowledgement after the stream took them, and whose next ones fail
    /// before they leave: what a publish racing a reconnect (or a slow acknowledgement on a loaded machine) looks like.
    /// </summary>
    private sealed class AckLosingLink(IFederationLink inner) : IFederationLink
    {
        private int _loseAcks;
        private int _refuse;

        public void Arrange(int loseAcks, int refuse)
        {
            _loseAcks = loseAcks;
            _refuse = refuse;
        }

        public async Task PublishAsync(string subject, string messageId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            if (Interlocked.Decrement(ref _loseAcks) >= 0)
            {
                await inner.PublishAsync(subject, messageId, data, cancellationToken);
                throw new TimeoutException("the stream took it, the acknowledgement was lost");
            }

            if (Interlocked.Decrement(ref _refuse) >= 0)
            {
                throw new IOException("link down");
            }

            await inner.PublishAsync(subject, messageId, data, cancellationToken);
        }

        public Task ReceiveAsync(Func<LinkMessage, CancellationToken, Task> handler, CancellationToken cancellationToken) => inner.ReceiveAsync(handler, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>
    /// The shared store of a replica that is stopped at the worst moment: while its seen-id row commits (the row is
    /// written, and a cancellable call would then report the stop instead of the result).
    /// </summary>
    private sealed class StoppedWhileMarkingSeen(IFederationStore inner, CancellationTokenSource stop) : IFederationStore
    {
        public async ValueTask<bool> TryMarkSeenAsync(string from, Guid id, DateTimeOffset keepUntil, CancellationToken cancellationToken = default)
        {
            var fresh = await inner.TryMarkSeenAsync(from, id, keepUntil, CancellationToken.None);
            await stop.CancelAsync();
            cancellationToken.ThrowIfCancellationRequested();
            return fresh;
        }

        public Task InitializeAsync(CancellationToken cancellationToken) => inner.InitializeAsync(cancellationToken);

        public Task<OutboundEntry> AppendOutboundAsync(string peer, string sourceId, Func<long, OutboundEntry> seal, CancellationToken cancellationToken) =>
            inner.AppendOutboundAsync(peer, sourceId, seal, cancellationToken);

        public Task MarkPublishedAsync(string peer, long linkSeq, CancellationToken cancellationToken) => inner.MarkPublishedAsync(peer, linkSeq, cancellationToken);

        public Task<IReadOnlyList<OutboundEntry>> PendingAsync(DateTimeOffset now, DateTimeOffset createdBefore, int max, CancellationToken cancellationToken) =>
            inner.PendingAsync(now, createdBefore, max, cancellationToken);

        public Task<IReadOnlyList<OutboundEntry>> OutboundRangeAsync(string peer, long from, long to, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.OutboundRangeAsync(peer, from, to, now, cancellationToken);

        public Task ForgetSeenAsync(string from, Guid id, CancellationToken cancellationToken) => inner.ForgetSeenAsync(from, id, cancellationToken);

        public Task RecordReceivedAsync(string peer, long linkSeq, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.RecordReceivedAsync(peer, linkSeq, now, cancellationToken);

        public Task<IReadOnlyList<LinkGap>> GapsAsync(CancellationToken cancellationToken) => inner.GapsAsync(cancellationToken);

        public Task SkipAsync(string peer, long throughLinkSeq, CancellationToken cancellationToken) => inner.SkipAsync(peer, throughLinkSeq, cancellationToken);

        public Task RememberIntentAsync(Guid intentId, string peer, DateTimeOffset keepUntil, CancellationToken cancellationToken) =>
            inner.RememberIntentAsync(intentId, peer, keepUntil, cancellationToken);

        public Task<string?> IntentPeerAsync(Guid intentId, CancellationToken cancellationToken) => inner.IntentPeerAsync(intentId, cancellationToken);

        public Task PruneAsync(DateTimeOffset now, CancellationToken cancellationToken) => inner.PruneAsync(now, cancellationToken);
    }

    private sealed record Domain(NatsDomainUser User, IReadOnlyDictionary<KeyUsage, Ed25519Signer> Signers, RootKey Root, KeySet KeySet);

    private static Domain Keys(NatsDomainUser user)
    {
        var signers = KeyUsages.All.ToDictionary(u => u, Ed25519Signer.Generate);
        var now = DateTimeOffset.UtcNow;
        var keySet = new KeySet(user.Domain, 1, now.AddDays(-1), now.AddDays(30),
            signers.Values.Select(s => new KeySetEntry(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), now.AddDays(-1), now.AddDays(90))).ToList(), []);
        return new Domain(user, signers, RootKey.Generate(user.Domain), keySet);
    }

    private static TrustConfig Trust(Domain self, Domain peer)
    {
        var trust = new TrustConfig([self.Root.VerifierKey, peer.Root.VerifierKey], self.KeySet);
        Assert.True(trust.AcceptKeySet(peer.KeySet.Sign(peer.Root), DateTimeOffset.UtcNow).IsValid);
        return trust;
    }

    private NatsFederationLink Link(NatsDomainUser user, string? url = null)
    {
        var link = new NatsFederationLink(user.Domain, new NatsFederationLinkOptions
        {
            Url = url ?? nats.Url,
            User = user.User,
            Password = user.Password,
            AckWait = TimeSpan.FromSeconds(2),
            PublishTimeout = TimeSpan.FromSeconds(1),
        }, NullLogger<NatsFederationLink>.Instance);
        _disposables.Add(link);
        return link;
    }

    private async Task<SqlFederationStore> StoreAsync()
    {
        var cs = await postgres.CreateDatabaseAsync("fed");
        _databases.Add(cs);
        var store = SqlFederationStore.Postgres(cs);
        _disposables.Add(store);
        return store;
    }

    private static FederationBridge Bridge(Domain self, Domain peer, IFederationStore store, IFederationLink link, ILocalBus bus, RelayTable? table = null) =>
        new(new FederationOptions { LocalDomain = self.User.Domain, Peers = [peer.User.Domain] }, table ?? RelayTable.Default, self.Signers[KeyUsage.Envelope],
            Trust(self, peer), store, link, bus, TimeProvider.System, NullLogger<FederationBridge>.Instance);

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        // Generous: NATS reconnect back-off and a loaded 2-core machine (the bound only turns a hang into a failure).
        var until = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, "timed out waiting for " + what);
            await Task.Delay(25);
        }
    }

    /// <summary>Waits until the receiving bridge created its domain's stream (publishes before that are refused).</summary>
    private async Task StreamCreatedAsync(string domain)
    {
        await using var admin = await nats.ConnectAsync();
        var js = admin.CreateJetStreamContext();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            try
            {
                await js.GetStreamAsync(Subjects.Stream(domain), cancellationToken: bound.Token);
                return;
            }
            catch (NatsJSApiException)
            {
                await Task.Delay(50, bound.Token);
            }
        }
    }

    /// <summary>Starts clean: the test domains' streams from an earlier run are removed (as the unrestricted test user).</summary>
    public async Task InitializeAsync()
    {
        await using var admin = await nats.ConnectAsync();
        var js = admin.CreateJetStreamContext();
        foreach (var user in new[] { NatsDomainUsers.Origin, NatsDomainUsers.Target })
        {
            try
            {
                await js.DeleteStreamAsync(Subjects.Stream(user.Domain));
            }
            catch (NatsJSApiException)
            {
                // not there
            }
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var d in _disposables)
        {
            await d.DisposeAsync();
        }

        foreach (var cs in _databases)
        {
            await postgres.DropDatabaseAsync(cs);
        }

        await InitializeAsync();
    }

    [Fact(Timeout = 120_000)]
    public async Task One_domains_nats_user_cannot_publish_as_the_other()
    {
        var origin = NatsDomainUsers.Origin;
        var target = NatsDomainUsers.Target;
        var targetLink = Link(target);
        var stream = Subjects.Stream(target.Domain);
        await targetLink.EnsureInboundAsync(CancellationToken.None);
        var originLink = Link(origin);

        // As itself, the origin may publish to the target: the stream acknowledges it.
        await originLink.PublishAsync(Subjects.For(target.Domain, origin.Domain, "DomainHeartbeat"), Guid.NewGuid().ToString(), new byte[] { 1 }, CancellationToken.None);
        // As the target (its <from> token), the server refuses: no acknowledgement comes back, and the stream never holds it.
        await Assert.ThrowsAnyAsync<Exception>(() =>
            originLink.PublishAsync(Subjects.For(target.Domain, target.Domain, "DomainHeartbeat"), Guid.NewGuid().ToString(), new byte[] { 2 }, CancellationToken.None));

        await using var admin = await nats.ConnectAsync();
        var info = await admin.CreateJetStreamContext().GetStreamAsync(stream);
        Assert.Equal(1, (long)info.Info.State.Messages);
    }

    [Fact(Timeout = 120_000)]
    public async Task Publishing_an_envelope_the_stream_already_holds_counts_as_published()
    {
        var origin = NatsDomainUsers.Origin;
        var target = NatsDomainUsers.Target;
        await Link(target).EnsureInboundAsync(CancellationToken.None);
        var originLink = Link(origin);
        var subject = Subjects.For(target.Domain, origin.Domain, "DomainHeartbeat");
        var id = Guid.NewGuid().ToString();

        await originLink.PublishAsync(subject, id, new byte[] { 1 }, CancellationToken.None);
        // The same envelope again (its first acknowledgement lost): JetStream answers "duplicate", which is not a failure.
        await originLink.PublishAsync(subject, id, new byte[] { 1 }, CancellationToken.None);

        await using var admin = await nats.ConnectAsync();
        var info = await admin.CreateJetStreamContext().GetStreamAsync(Subjects.Stream(target.Domain));
        Assert.Equal(1, (long)info.Info.State.Messages);
    }

    [Fact(Timeout = 120_000)]
    public async Task An_envelope_whose_acknowledgement_was_lost_does_not_hold_back_the_ones_behind_it()
    {
        var origin = Keys(NatsDomainUsers.Origin);
        var target = Keys(NatsDomainUsers.Target);
        var link = new AckLosingLink(Link(origin.User));
        var sender = Bridge(origin, target, await StoreAsync(), link, new RecordingBus());
        var bus = new RecordingBus();
        var receiver = Bridge(target, origin, await StoreAsync(), Link(target.User), bus);
        using var stop = new CancellationTokenSource();
        var loops = Task.WhenAll(sender.RunAsync(TimeSpan.FromMilliseconds(250), stop.Token), receiver.RunAsync(TimeSpan.FromMilliseconds(250), stop.Token));
        await StreamCreatedAsync(target.User.Domain);
        link.Arrange(loseAcks: 1, refuse: 2);

        for (var i = 1; i <= 3; i++)
        {
            await sender.RelayAsync(new DomainHeartbeat(origin.User.Domain, i, DateTimeOffset.UtcNow, 1, 1, 1, ""), "hb-" + i, CancellationToken.None);
        }

        // The pump publishes the kept envelopes in link order: the first one, already in the stream, must count as
        // published, or the two behind it wait for the whole duplicate window (2 min, past this bound).
        await EventuallyAsync(() => bus.Delivered.Count >= 3, "the envelopes behind the one whose acknowledgement was lost");
        Assert.Equal([1L, 2L, 3L], bus.Delivered.Select(m => ((DomainHeartbeat)m.Message).Sequence).Order());
        stop.Cancel();
        await loops.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_replica_stopped_while_it_marks_an_envelope_seen_does_not_lose_the_envelope()
    {
        var origin = Keys(NatsDomainUsers.Origin);
        var target = Keys(NatsDomainUsers.Target);
        var sender = Bridge(origin, target, await StoreAsync(), Link(origin.User), new RecordingBus());
        var targetStore = await StoreAsync();
        using var stop1 = new CancellationTokenSource();
        var bus1 = new RecordingBus();
        var replica1 = Bridge(target, origin, new StoppedWhileMarkingSeen(targetStore, stop1), Link(target.User), bus1);
        var run1 = replica1.RunAsync(TimeSpan.FromMilliseconds(250), stop1.Token);
        await StreamCreatedAsync(target.User.Domain);

        await sender.RelayAsync(new DomainHeartbeat(origin.User.Domain, 1, DateTimeOffset.UtcNow, 1, 1, 1, ""), "hb-1", CancellationToken.None);
        await run1.ContinueWith(_ => { }, TaskScheduler.Default); // stopped while marking the heartbeat seen

        // The other replica gets JetStream's redelivery (after AckWait) and must hand it over, not drop it as a replay.
        var bus2 = new RecordingBus();
        var replica2 = Bridge(target, origin, targetStore, Link(target.User), bus2);
        using var stop2 = new CancellationTokenSource();
        var run2 = replica2.RunAsync(TimeSpan.FromMilliseconds(250), stop2.Token);
        // Either the stopped replica handed it over before stopping (then the redelivery is a replay), or the other one does.
        await EventuallyAsync(() => (bus1.Delivered.Count == 1 && replica2.Counters.Dropped(DropReason.Replayed) == 1) || bus2.Delivered.Count == 1,
            "the heartbeat on one replica's bus");
        Assert.Equal(1, bus1.Delivered.Count + bus2.Delivered.Count);
        stop2.Cancel();
        await run2.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact(Timeout = 120_000)]
    public async Task Envelopes_cross_jetstream_in_order_and_a_receiver_replica_killed_mid_stream_loses_nothing()
    {
        var origin = Keys(NatsDomainUsers.Origin);
        var target = Keys(NatsDomainUsers.Target);
        var sender = Bridge(origin, target, await StoreAsync(), Link(origin.User), new RecordingBus());
        var targetStore = await StoreAsync();
        var bus1 = new RecordingBus();
        var bus2 = new RecordingBus();
        // Two Sync replicas of the target: one durable consumer, one database.
        var replica1 = Bridge(target, origin, targetStore, Link(target.User), bus1);
        var replica2 = Bridge(target, origin, targetStore, Link(target.User), bus2);
        using var stop1 = new CancellationTokenSource();
        using var stop2 = new CancellationTokenSource();
        var run1 = replica1.RunAsync(TimeSpan.FromMilliseconds(500), stop1.Token);
        var run2 = replica2.RunAsync(TimeSpan.FromMilliseconds(500), stop2.Token);
        // The sender's pump runs as in a Sync worker, and the first heartbeat waits for the target's stream: before it
        // exists a publish is refused, and only the pump would publish it again.
        using var stopSender = new CancellationTokenSource();
        var runSender = sender.RunAsync(TimeSpan.FromMilliseconds(500), stopSender.Token);
        await StreamCreatedAsync(target.User.Domain);
        const int count = 60;

        for (var i = 1; i <= count; i++)
        {
            await sender.RelayAsync(new DomainHeartbeat(origin.User.Domain, i, DateTimeOffset.UtcNow, 1, 1, 1, ""), "hb-" + i, CancellationToken.None);
            if (i == count / 3)
            {
                await EventuallyAsync(() => bus1.Delivered.Count + bus2.Delivered.Count >= 5, "some deliveries before the kill");
                stop1.Cancel();
            }
        }

        await EventuallyAsync(() => bus1.Delivered.Concat(bus2.Delivered).Select(m => ((DomainHeartbeat)m.Message).Sequence).Distinct().Count() == count, "every heartbeat");
        var sequences = bus1.Delivered.Concat(bus2.Delivered).Select(m => ((DomainHeartbeat)m.Message).Sequence).ToList();
        Assert.Equal(count, sequences.Count); // none twice: the shared seen-id store drops a redelivery
        Assert.Equal(0, replica1.Counters.Dropped(DropReason.SignatureInvalid) + replica2.Counters.Dropped(DropReason.SignatureInvalid));
        Assert.True(bus2.Delivered.Count > 0, "the surviving replica took over");
        stop2.Cancel();
        stopSender.Cancel();
        await Task.WhenAll(run1, run2, runSender).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    [Fact(Timeout = 180_000)]
    public async Task After_nats_is_unreachable_for_10_seconds_messages_within_their_ttl_arrive_once_and_expired_ones_never()
    {
        var origin = Keys(NatsDomainUsers.Origin);
        var target = Keys(NatsDomainUsers.Target);
        // Heartbeats live 4 s here (they expire during the outage); policy acknowledgements live 2 min (they survive it).
        var table = RelayTable.Default.With(
            RelayRoute.For<DomainHeartbeat>(TimeSpan.FromSeconds(4), RelayDestination.AllPeers, m => m.Domain),
            RelayRoute.For<PolicySynced>(TimeSpan.FromMinutes(2), RelayDestination.AllPeers, m => m.Domain));
        var natsUri = new Uri(nats.Url);
        await using var proxy = new TcpProxy(natsUri.Host, natsUri.Port);
        var bus = new RecordingBus();
        var sender = Bridge(origin, target, await StoreAsync(), Link(origin.User, $"nats://127.0.0.1:{proxy.Port}"), new RecordingBus(), table);
        var receiver = Bridge(target, origin, await StoreAsync(), Link(target.User), bus, table);
        using var stop = new CancellationTokenSource();
        var loops = Task.WhenAll(sender.RunAsync(TimeSpan.FromMilliseconds(250), stop.Token), receiver.RunAsync(TimeSpan.FromMilliseconds(250), stop.Token));
        PolicySynced Ack(long epoch) => new(origin.User.Domain, origin.User.Domain, PolicyScope.Domain, epoch, "sha256:x", DateTimeOffset.UtcNow);
        await StreamCreatedAsync(target.User.Domain);
        await sender.RelayAsync(Ack(1), "ack-1", CancellationToken.None);
        await EventuallyAsync(() => bus.Delivered.Count == 1, "the acknowledgement sent before the outage");

        proxy.Stop();
        var cut = DateTime.UtcNow;
        for (var epoch = 2; epoch <= 4; epoch++)
        {
            await sender.RelayAsync(Ack(epoch), "ack-" + epoch, CancellationToken.None);
        }

        await sender.RelayAsync(new DomainHeartbeat(origin.User.Domain, 1, DateTimeOffset.UtcNow, 1, 1, 1, ""), "hb-1", CancellationToken.None);
        var outage = TimeSpan.FromSeconds(10) - (DateTime.UtcNow - cut);
        if (outage > TimeSpan.Zero)
        {
            await Task.Delay(outage);
        }

        proxy.Start();

        await EventuallyAsync(() => bus.Delivered.Count >= 4, "the acknowledgements kept in the outbound log");
        // The positive signal came; give a late duplicate or the expired heartbeat the pump's next rounds to show up.
        var settle = DateTime.UtcNow.AddSeconds(2);
        while (DateTime.UtcNow < settle)
        {
            await Task.Delay(100);
        }

        var epochs = bus.Delivered.Select(m => m.Message).OfType<PolicySynced>().Select(p => p.Epoch).ToList();
        Assert.Equal([1L, 2L, 3L, 4L], epochs.Order());
        Assert.DoesNotContain(bus.Delivered, m => m.Message is DomainHeartbeat);
        stop.Cancel();
        await loops.ContinueWith(_ => { }, TaskScheduler.Default);
    }
}
