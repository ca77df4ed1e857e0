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

    /// <summary>The link of <paramref name="domain"/> on this network.</summary>
    public IFederationLink LinkFor(string domain) => new InProcessFederationLink(this, domain);

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

            return network.Inbox(to).Writer.WriteAsync(new LinkMessage(subject, data.ToArray()), cancellationToken).AsTask();
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
