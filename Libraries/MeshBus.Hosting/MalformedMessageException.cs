namespace MeshBus.Hosting;

/// <summary>
/// A message that deserialized but does not have the shape of its contract (a required field missing, an empty id).
/// It is never retried: the endpoint moves it to its <c>_error</c> queue at once, with this message in the
/// <c>MT-Fault-Message</c> header, and goes on with the next message.
/// </summary>
public sealed class MalformedMessageException : RejectedMessageException
{
    /// <summary>Creates the exception for a message type and the fields that are wrong.</summary>
    /// <param name="messageType">The contract type.</param>
    /// <param name="problems">One entry per field, e.g. <c>agent is missing</c>.</param>
    public MalformedMessageException(Type messageType, IReadOnlyList<string> problems)
        : base($"{messageType.Name} is malformed: {string.Join("; ", problems)}")
    {
        MessageType = messageType;
        Problems = problems;
    }

    /// <summary>The contract type.</summary>
    public Type MessageType { get; }

    /// <summary>What is wrong, field by field.</summary>
    public IReadOnlyList<string> Problems { get; }
}
