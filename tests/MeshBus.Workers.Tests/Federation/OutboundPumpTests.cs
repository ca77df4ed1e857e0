using System.Collections.Concurrent;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Trust;
using MeshBus.Workers.Tests.Authorize;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Federation;

/// <summary>The outbound pump: what the outbound log keeps while a link is down goes out when it is back.</summary>
public sealed class OutboundPumpTests
{
    private const string A = "a.example/prod";
    private const string B = "b.example/prod";
    private const string C = "c.example/prod";

    private sealed class NoBus : ILocalBus
    {
        public Task DeliverAsync(BridgedMessage message, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Refuses publishes to the chosen peers, as a link to a peer whose stream is missing does.</summary>
    private sealed class RefusingLink(IFederationLink inner) : IFederationLink
    {
        public ConcurrentDictionary<string, bool> Refused { get; } = new();

        public ConcurrentQueue<string> Published { get; } = new();

        public async Task PublishAsync(string subject, string messageId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            Subjects.TryParse(subject, out var to, out _, out _);
            if (Refused.ContainsKey(to))
            {
                throw new IOException("no stream for " + to);
            }

            await inner.PublishAsync(subject, messageId, data, cancellationToken);
            Published.Enqueue(to);
        }

        public Task ReceiveAsync(Func<LinkMessage, CancellationToken, Task> handler, CancellationToken cancellationToken) => inner.ReceiveAsync(handler, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [Fact(Timeout = 60_000)]
    public async Task A_peer_that_stays_unreachable_does_not_hold_back_what_is_kept_for_another_peer()
    {
        var a = FederatedDomain.Create(A);
        var b = FederatedDomain.Create(B);
        var c = FederatedDomain.Create(C);
        var time = new FakeTimeProvider(a.Start);
        var link = new RefusingLink(new InProcessFederationNetwork().LinkFor(A));
        var store = SqlFederationStore.Sqlite(Path.Combine(Path.GetTempPath(), "meshbus-fed-" + Guid.NewGuid().ToString("N") + ".db"), time);
        await using var disposeStore = store;
        var bridge = new FederationBridge(new FederationOptions { LocalDomain = A, Peers = [B, C] }, RelayTable.Default, a.Signers[KeyUsage.Envelope],
            a.TrustWith([b, c]), store, link, new NoBus(), time, NullLogger<FederationBridge>.Instance);
        link.Refused[Subjects.Token(B)] = true;
        link.Refused[Subjects.Token(C)] = true;

        // Both links down: each peer's heartbeat stays in the outbound log.
        Assert.Equal(2, (await bridge.RelayAsync(new DomainHeartbeat(A, 1, time.GetUtcNow(), 1, 1, 1, ""), "hb-1", CancellationToken.None)).Count);
        Assert.Empty(link.Published);

        // C is back, B is not: B's entry comes first in the log, and C's must still go out.
        link.Refused.TryRemove(Subjects.Token(C), out _);
        time.Advance(new FederationOptions { LocalDomain = A, Peers = [] }.PendingAfter + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await bridge.PublishPendingAsync(CancellationToken.None));
        Assert.Equal([Subjects.Token(C)], link.Published);

        // B back too: its entry goes, and C's is not sent twice.
        link.Refused.TryRemove(Subjects.Token(B), out _);
        Assert.Equal(1, await bridge.PublishPendingAsync(CancellationToken.None));
        Assert.Equal([Subjects.Token(C), Subjects.Token(B)], link.Published);
    }
}
