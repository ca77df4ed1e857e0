using System.Collections.Concurrent;
using System.Threading.Channels;

namespace MeshBus.Federation;

/// <summary>
/// Embedded mode's bridge: domains in one process exchange the same signed envelopes on the same subjects through
/// in-memory queues, and the receiving <see cref="FederationBridge"/> applies the same checks as over NATS.
/// </summary>
public sealed class InProcessFederationNetwork
{
    private readonly ConcurrentDictionary<string, Channel<LinkMessage>> _inboxes = new(StringComparer.Ordinal);

    // Stalled directions (from token, to token) and what was published on them meanwhile, in order; under _stallLock.
    private readonly Dictionary<(string From, string To), List<LinkMessage>> _stalled = [];
    private readonly Lock _stallLock = new();

    /// <summary>The link of <paramref name="domain"/> on this network.</summary>
    public IFederationLink LinkFor(string domain) => new InProcessFederationLink(this, domain);

    /// <summary>
    /// Stalls the direction from <paramref name="from"/> to <paramref name="to"/>: what <paramref name="from"/> publishes
    /// to <paramref name="to"/> is held, in order, as a JetStream stream holds messages its consumer cannot reach, until
    /// <see cref="Recover"/>. The other direction is untouched. Stalling a stalled direction changes nothing.
    /// </summary>
    public void Stall(string from, string to)
    {
        lock (_stallLock)
        {
            _stalled.TryAdd((Subjects.Token(from), Subjects.Token(to)), []);
        }
    }

    /// <summary>
    /// Ends a stall of the direction from <paramref name="from"/> to <paramref name="to"/>: the messages held meanwhile
    /// are delivered first, in the order they were published (so the receiver sees no gap in the link sequence), then
    /// everything published later. Returns how many were held; 0 when the direction was not stalled.
    /// </summary>
    public int Recover(string from, string to)
    {
        lock (_stallLock)
        {
            if (!_stalled.Remove((Subjects.Token(from), Subjects.Token(to)), out var held))
            {
                return 0;
            }

            var inbox = Inbox(Subjects.Token(to));
            foreach (var message in held)
            {
                // Unbounded: never waits, so writing under the lock is safe.
                inbox.Writer.TryWrite(message);
            }

            return held.Count;
        }
    }

    /// <summary>Delivers <paramref name="message"/> to the inbox of <paramref name="to"/>, or holds it while that direction is stalled.</summary>
    private void Deliver(string from, string to, LinkMessage message)
    {
        lock (_stallLock)
        {
            if (_stalled.TryGetValue((from, to), out var held))
            {
                held.Add(message);
                return;
            }

            // Written under the lock so a concurrent Recover cannot deliver held messages after this later one.
            Inbox(to).Writer.TryWrite(message);
        }
    }

    internal Channel<LinkMessage> Inbox(string token) =>
        _inboxes.GetOrAdd(token, _ => Channel.CreateUnbounded<LinkMessage>(new UnboundedChannelOptions { SingleReader = false }));

    private sealed class InProcessFederationLink(InProcessFederationNetwork network, string domain) : IFederationLink
    {
        public Task PublishAsync(string subject, string messageId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            if (!Subjects.TryParse(subject, out var to, out var from, out _))
            {
                throw new ArgumentException($"'{subject}' is not a bridge subject", nameof(subject));
            }

            // The permission NATS enforces per user: a domain publishes only with its own <from>.
            if (from != Subjects.Token(domain))
            {
                throw new UnauthorizedAccessException($"{domain} may not publish on {subject}");
            }

            cancellationToken.ThrowIfCancellationRequested();
            network.Deliver(from, to, new LinkMessage(subject, data.ToArray()));
            return Task.CompletedTask;
        }

        public async Task ReceiveAsync(Func<LinkMessage, CancellationToken, Task> handler, CancellationToken cancellationToken)
        {
            var inbox = network.Inbox(Subjects.Token(domain));
            await foreach (var message in inbox.Reader.ReadAllAsync(cancellationToken))
            {
                try
                {
                    await handler(message, cancellationToken);
                }
                catch (Exception) when (!cancellationToken.IsCancellationRequested)
                {
                    // As JetStream redelivers an unacknowledged message: back on the queue, after a pause.
                    await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
                    await inbox.Writer.WriteAsync(message, cancellationToken);
                }
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
