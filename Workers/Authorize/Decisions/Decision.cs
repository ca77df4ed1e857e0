using MeshBus.Contracts;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>What a decision sends: one message to one verified agent's queue.</summary>
/// <param name="Agent">The verified subject the message is routed to.</param>
/// <param name="Message">A <see cref="GrantIssued"/>, <see cref="GrantRenewed"/> or <see cref="GrantDenied"/>; at the origin of a
/// cross-domain intent, an <see cref="IntentEndorsed"/> (published for the bridge, not sent to the agent).</param>
public sealed record Decision(string Agent, object Message)
{
    /// <summary>
    /// True when the decision is the one recorded for this very intent (its digest and agent), and so may be published
    /// to the workers (saga, lineage, the bridge). An answer that is not recorded (bad input, an intent id another agent
    /// holds, lineage down) goes to the sender alone: it must not move the execution of the intent id it names.
    /// </summary>
    public bool Recorded { get; init; }

    /// <summary>The verified intent the first decision was recorded for, published beside it for the saga and lineage.</summary>
    public IntentSubmitted? Intent { get; init; }

    /// <summary>True when a grant or renewal is released.</summary>
    public bool Granted => Message is GrantIssued or GrantRenewed;
}
