namespace MeshBus.Federation;

/// <summary>One message as the link delivered it: the subject it was published on and its exact bytes.</summary>
/// <param name="Subject">The bridge subject.</param>
/// <param name="Data">The wire envelope.</param>
public sealed record LinkMessage(string Subject, ReadOnlyMemory<byte> Data);

/// <summary>
/// The transport between domains: JetStream in a fleet (<see cref="NatsFederationLink"/>), an in-process network in
/// embedded mode (<see cref="InProcessFederationNetwork"/>). It moves bytes only; every check is in <see cref="FederationBridge"/>.
/// </summary>
public interface IFederationLink : IAsyncDisposable
{
    /// <summary>Publishes <paramref name="data"/> on <paramref name="subject"/>; completes when the link holds it (JetStream ack). <paramref name="messageId"/> de-duplicates.</summary>
    Task PublishAsync(string subject, string messageId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>
    /// Receives this domain's inbound messages until cancelled, shared with the other replicas. A message is acknowledged
    /// when <paramref name="handler"/> returns and delivered again later when it throws.
    /// </summary>
    Task ReceiveAsync(Func<LinkMessage, CancellationToken, Task> handler, CancellationToken cancellationToken);
}
