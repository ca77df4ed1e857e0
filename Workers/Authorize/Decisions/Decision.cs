using MeshBus.Contracts;

namespace MeshBus.Workers.Authorize.Decisions;

/// <summary>
/// What a decision releases: one message for one verified agent. The subtype says which, so a consumer routes it
/// without inspecting an <see cref="object"/>: grants, renewals and denials go to the agent's queue (and are published for
/// the saga); an endorsement is published for the bridge only.
/// </summary>
/// <param name="Agent">The verified subject the answer is for.</param>
public abstract record Decision(string Agent)
{
    /// <summary>
    /// True when the decision is the one recorded for this very intent (its digest and agent), and so may be published
    /// to the workers (saga, lineage, the bridge). An answer that is not recorded (bad input, an intent id another agent
    /// holds, lineage down) goes to the sender alone: it must not move the execution of the intent id it names.
    /// </summary>
    public bool Recorded { get; init; }

    /// <summary>The verified intent the first decision was recorded for, published beside it for the saga and lineage.</summary>
    public IntentSubmitted? Intent { get; init; }

    /// <summary>The message to send or publish (its runtime type is the contract type).</summary>
    public abstract object Message { get; }

    /// <summary>True when a grant or renewal is released.</summary>
    public bool Granted => this is GrantDecision or RenewalDecision;

    /// <summary>The outcome label of metrics and traces: <c>allow</c>, <c>deny</c> or <c>endorse</c>.</summary>
    public string Outcome => this switch
    {
        DenialDecision => "deny",
        EndorsementDecision => "endorse",
        _ => "allow",
    };
}

/// <summary>A first grant.</summary>
/// <param name="Agent">The verified subject.</param>
/// <param name="Grant">The signed grant.</param>
public sealed record GrantDecision(string Agent, GrantIssued Grant) : Decision(Agent)
{
    /// <inheritdoc />
    public override object Message => Grant;
}

/// <summary>A lease renewal.</summary>
/// <param name="Agent">The verified subject.</param>
/// <param name="Renewal">The signed renewal.</param>
public sealed record RenewalDecision(string Agent, GrantRenewed Renewal) : Decision(Agent)
{
    /// <inheritdoc />
    public override object Message => Renewal;
}

/// <summary>A denial, recorded or (when nothing could be recorded) not.</summary>
/// <param name="Agent">The verified subject.</param>
/// <param name="Denial">The denial with its reason.</param>
public sealed record DenialDecision(string Agent, GrantDenied Denial) : Decision(Agent)
{
    /// <inheritdoc />
    public override object Message => Denial;
}

/// <summary>At the origin of a cross-domain intent: the endorsement, for the bridge (never sent to the agent).</summary>
/// <param name="Agent">The verified subject.</param>
/// <param name="Endorsement">The signed endorsement.</param>
public sealed record EndorsementDecision(string Agent, IntentEndorsed Endorsement) : Decision(Agent)
{
    /// <inheritdoc />
    public override object Message => Endorsement;
}
