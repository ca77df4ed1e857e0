namespace MeshBus.Hosting;

/// <summary>
/// A message that can never succeed, whatever is retried: the endpoint moves it to its <c>_error</c> queue at once
/// (no immediate retries, no redeliveries) with this message in the <c>MT-Fault-Message</c> header, and goes on with
/// the next. Thrown by the agent ingress (a type agents may not publish, input over a limit, a report that does not
/// verify) and by consumers for input that names no one who could be answered (a forged credential).
/// </summary>
public class RejectedMessageException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the message is rejected, for the error queue's header and the logs.</param>
    public RejectedMessageException(string message)
        : base(message)
    {
    }
}
