using MeshBus.Contracts;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>What a decision sends: one message to one verified agent's queue.</summary>
/// <param name="Agent">The verified subject the message is routed to.</param>
/// <param name="Message">A <see cref="GrantIssued"/>, <see cref="GrantRenewed"/> or <see cref="GrantDenied"/>; at the origin of a
/// cross-domain intent, an <see cref="IntentEndorsed"/> (published for the bridge, not sent to the agent).</param>
public sealed record Decision(string Agent, object Message)
{
    /// <summary>True when a grant or renewal is released.</summary>
    public bool Granted => Message is GrantIssued or GrantRenewed;
}
