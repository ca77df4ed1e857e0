using MeshBus.Contracts;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>Enforce-internal: a halt (of any scope) reached one execution's saga.</summary>
/// <param name="IntentId">The execution.</param>
/// <param name="Halt">The halt command, unchanged.</param>
public sealed record ExecutionHaltRequested(Guid IntentId, HaltExecution Halt);

/// <summary>Scheduled: no decision arrived in time.</summary>
/// <param name="IntentId">The intent.</param>
public sealed record DecisionOverdue(Guid IntentId);

/// <summary>Scheduled at the lease's expiry (plus grace).</summary>
/// <param name="IntentId">The intent.</param>
public sealed record LeaseExpiryDue(Guid IntentId);

/// <summary>Scheduled: no execution heartbeat arrived in time.</summary>
/// <param name="IntentId">The intent.</param>
public sealed record HeartbeatOverdue(Guid IntentId);

/// <summary>Scheduled: the agent did not acknowledge a halt in time.</summary>
/// <param name="IntentId">The intent.</param>
public sealed record HaltAcknowledgementOverdue(Guid IntentId);

/// <summary>Enforce-internal: this domain applied (and every Authorize replica loaded) a new epoch of its policy; re-evaluate the execution.</summary>
/// <param name="IntentId">The execution.</param>
/// <param name="Epoch">The newly applied domain-policy epoch.</param>
public sealed record ExecutionReevaluationRequested(Guid IntentId, long Epoch);
