using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>
/// The intent lifecycle (DESIGN.md §5): <c>Submitted → Granted | Denied → Executing → Completed | Halted | Expired</c>,
/// plus <c>Halting</c> while a halt waits for the agent's acknowledgement. It runs beside the critical path: it only
/// observes decisions and execution reports, orders halts and renewals, and every non-terminal state has a scheduled
/// timeout that moves it on, so a lost message is repaired. Events that do not apply in the current state (duplicates,
/// late arrivals after the end) are ignored, which makes it idempotent under redelivery.
/// </summary>
public sealed class IntentLifecycleStateMachine : MassTransitStateMachine<IntentLifecycleState>
{
    private readonly EnforceOptions _options;
    private readonly TimeProvider _clock;
    private readonly string _domain;

    /// <summary>Creates the state machine.</summary>
    public IntentLifecycleStateMachine(IOptions<EnforceOptions> options, IOptions<MeshBusOptions> mesh, TimeProvider clock, GovernanceSigner signer)
    {
        _options = options.Value;
        _clock = clock;
        _domain = mesh.Value.Domain;

        InstanceState(x => x.CurrentState);
        Event(() => IntentSubmittedEvent, e => e.CorrelateById(m => m.Message.IntentId));
        Event(() => GrantIssuedEvent, e => e.CorrelateById(m => m.Message.IntentId));
        Event(() => GrantDeniedEvent, e => e.CorrelateById(m => m.Message.IntentId));
        Event(() => ExecutionStartedEvent, e => e.CorrelateById(m => m.Message.IntentId));
        Event(() => GrantRenewedEvent, e =>
        {
            e.CorrelateById(m => m.Message.IntentId);
            e.OnMissingInstance(m => m.Fault());
        });
        Event(() => ExecutionHeartbeatEvent, e =>
        {
            e.CorrelateById(m => m.Message.IntentId);
            e.OnMissingInstance(m => m.Discard());
        });
        // Reports that end an execution travel apart from the events that create the saga and can arrive first
        // (another replica, a redelivery). They create the saga themselves and end it: a report kept only by retrying
        // until the saga exists is lost once the retries run out, and the execution is then halted and its agent
        // quarantined for work it finished.
        Event(() => ExecutionCompletedEvent, e => e.CorrelateById(m => m.Message.IntentId));
        Event(() => ExecutionHaltedEvent, e => e.CorrelateById(m => m.Message.IntentId));
        Event(() => ReevaluationRequestedEvent, e =>
        {
            e.CorrelateById(m => m.Message.IntentId);
            e.OnMissingInstance(m => m.Discard());
        });
        Event(() => HaltRequestedEvent, e =>
        {
            e.CorrelateById(m => m.Message.IntentId);
            e.OnMissingInstance(m => m.Discard());
        });

        Schedule(() => DecisionTimeout, x => x.DecisionTimeoutToken, s =>
        {
            s.Delay = _options.DecisionTimeout;
            s.Received = r => { r.CorrelateById(m => m.Message.IntentId); r.OnMissingInstance(m => m.Discard()); };
        });
        Schedule(() => LeaseTimeout, x => x.LeaseTimeoutToken, s =>
        {
            s.Delay = _options.LeaseGrace;
            s.Received = r => { r.CorrelateById(m => m.Message.IntentId); r.OnMissingInstance(m => m.Discard()); };
        });
        Schedule(() => HeartbeatTimeout, x => x.HeartbeatTimeoutToken, s =>
        {
            s.Delay = _options.HeartbeatTimeout;
            s.Received = r => { r.CorrelateById(m => m.Message.IntentId); r.OnMissingInstance(m => m.Discard()); };
        });
        Schedule(() => HaltAcknowledgementTimeout, x => x.HaltAcknowledgementTimeoutToken, s =>
        {
            s.Delay = _options.HaltAcknowledgementTimeout;
            s.Received = r => { r.CorrelateById(m => m.Message.IntentId); r.OnMissingInstance(m => m.Discard()); };
        });

        // Duplicates and late arrivals: nothing to do, never an error.
        OnUnhandledEvent(x => x.Ignore());

        Initially(
            When(IntentSubmittedEvent)
                .Then(c => ApplyIntent(c.Saga, c.Message))
                .Schedule(DecisionTimeout, c => new DecisionOverdue(c.Saga.CorrelationId))
                .TransitionTo(Submitted),
            When(GrantIssuedEvent)
                .Then(c => ApplyGrant(c.Saga, c.Message))
                .Schedule(LeaseTimeout, c => new LeaseExpiryDue(c.Saga.CorrelationId), c => LeaseDelay(c.Saga))
                .TransitionTo(Granted),
            When(GrantDeniedEvent)
                .Then(c => ApplyDenial(c.Saga, c.Message))
                .TransitionTo(Denied),
            When(ExecutionStartedEvent)
                .Then(c => ApplyStart(c.Saga, c.Message))
                .Schedule(HeartbeatTimeout, c => new HeartbeatOverdue(c.Saga.CorrelationId))
                .TransitionTo(Executing),
            When(ExecutionCompletedEvent)
                .Then(c => ApplyEndReport(c.Saga, c.Message.Domain, c.Message.Agent))
                .Then(c => End(c.Saga, GovernanceReason.None, c.Message.Outcome))
                .TransitionTo(Completed),
            When(ExecutionHaltedEvent)
                .Then(c => ApplyEndReport(c.Saga, c.Message.Domain, c.Message.Agent))
                .Then(c => c.Saga.HaltId = c.Message.HaltId)
                .Then(c => End(c.Saga, c.Message.Reason, c.Message.Detail))
                .TransitionTo(Halted));

        // A grant seen after the start (the two travel different ways): without its lease the saga would have no
        // expiry to end on. A grant that arrives when a lease is already known is a duplicate and changes nothing.
        During(Executing, Halting,
            When(GrantIssuedEvent, c => c.Saga.ExpiresAt is null)
                .Then(c => ApplyGrant(c.Saga, c.Message))
                .Schedule(LeaseTimeout, c => new LeaseExpiryDue(c.Saga.CorrelationId), c => LeaseDelay(c.Saga)));

        // The intent's details can arrive after the decision (the two travel different ways): fill them in.
        DuringAny(
            When(IntentSubmittedEvent)
                .Then(c => ApplyIntent(c.Saga, c.Message)));

        During(Submitted,
            When(GrantIssuedEvent)
                .Unschedule(DecisionTimeout)
                .Then(c => ApplyGrant(c.Saga, c.Message))
                .Schedule(LeaseTimeout, c => new LeaseExpiryDue(c.Saga.CorrelationId), c => LeaseDelay(c.Saga))
                .TransitionTo(Granted),
            When(GrantDeniedEvent)
                .Unschedule(DecisionTimeout)
                .Then(c => ApplyDenial(c.Saga, c.Message))
                .TransitionTo(Denied),
            When(ExecutionStartedEvent)
                .Unschedule(DecisionTimeout)
                .Then(c => ApplyStart(c.Saga, c.Message))
                .Schedule(HeartbeatTimeout, c => new HeartbeatOverdue(c.Saga.CorrelationId))
                .TransitionTo(Executing),
            When(DecisionTimeout.Received)
                .Then(c => End(c.Saga, GovernanceReason.None, "no decision arrived within " + _options.DecisionTimeout))
                .TransitionTo(Expired));

        During(Granted,
            When(ExecutionStartedEvent)
                .Then(c => ApplyStart(c.Saga, c.Message))
                .Schedule(HeartbeatTimeout, c => new HeartbeatOverdue(c.Saga.CorrelationId))
                .TransitionTo(Executing));

        During(Granted, Executing,
            When(GrantRenewedEvent)
                .Then(c => ApplyRenewal(c.Saga, c.Message))
                .Schedule(LeaseTimeout, c => new LeaseExpiryDue(c.Saga.CorrelationId), c => LeaseDelay(c.Saga)),
            When(GrantDeniedEvent)
                .Then(c => StartHalt(c.Saga, Guid.NewGuid(), c.Message.Reason, "renewal denied: " + c.Message.Detail))
                .Publish(c => OwnHalt(c.Saga, c.Message.Reason, "renewal denied: " + c.Message.Detail))
                .Schedule(HaltAcknowledgementTimeout, c => new HaltAcknowledgementOverdue(c.Saga.CorrelationId))
                .TransitionTo(Halting),
            When(HaltRequestedEvent)
                .Then(c => StartHalt(c.Saga, c.Message.Halt.HaltId, c.Message.Halt.Reason, c.Message.Halt.Detail))
                .Schedule(HaltAcknowledgementTimeout, c => new HaltAcknowledgementOverdue(c.Saga.CorrelationId))
                .TransitionTo(Halting),
            When(ExecutionCompletedEvent)
                .Then(c => End(c.Saga, GovernanceReason.None, c.Message.Outcome))
                .Unschedule(LeaseTimeout)
                .Unschedule(HeartbeatTimeout)
                .TransitionTo(Completed),
            When(ExecutionHaltedEvent)
                .Then(c => c.Saga.HaltId = c.Message.HaltId ?? c.Saga.HaltId)
                .Then(c => End(c.Saga, c.Message.Reason, c.Message.Detail))
                .Unschedule(LeaseTimeout)
                .Unschedule(HeartbeatTimeout)
                .TransitionTo(Halted),
            When(LeaseTimeout.Received)
                .Then(c => End(c.Saga, GovernanceReason.LeaseExpired, $"lease expired at {c.Saga.ExpiresAt:O} without a renewal"))
                .Unschedule(HeartbeatTimeout)
                .Publish(c => OwnHalt(c.Saga, GovernanceReason.LeaseExpired, "lease expired without a renewal"))
                .TransitionTo(Expired));

        // A newly applied epoch of this domain's policy re-evaluates every live execution it governs (those this domain
        // decided): a renewal numbered above any asked so far, so Authorize decides it afresh under the new epoch (a
        // number it already decided would give back the old decision). A denial comes back as GrantDenied(PolicyRevoked)
        // and halts the execution like any refused renewal; the re-evaluation's decision is recorded by Authorize.
        During(Granted, Executing,
            When(ReevaluationRequestedEvent, c => c.Saga.TargetDomain == _domain && c.Message.Epoch > c.Saga.PolicyEpoch)
                .Then(c =>
                {
                    c.Saga.PolicyEpoch = c.Message.Epoch;
                    c.Saga.RenewalRequested = Math.Max(c.Saga.RenewalRequested, c.Saga.Renewal) + 1;
                })
                .Publish(c => new EvaluateIntent(c.Saga.CorrelationId, _domain, EvaluationKind.Reevaluation, c.Saga.RenewalRequested, _clock.GetUtcNow())));

        During(Executing,
            When(ExecutionHeartbeatEvent)
                .Then(c => ApplyHeartbeat(c.Saga, c.Message))
                .Schedule(HeartbeatTimeout, c => new HeartbeatOverdue(c.Saga.CorrelationId))
                // Only the domain that decided the grant renews it (DESIGN.md §3: the target owns the renewals); the
                // origin's saga of a cross-domain intent follows the target's renewals as they cross back. Asking its own
                // Authorize, which holds only the egress decision, earned a PolicyRevoked denial on every heartbeat.
                .If(c => c.Saga.TargetDomain == _domain && RenewalDue(c.Saga), b => b
                    .Then(c => c.Saga.RenewalRequested = c.Saga.Renewal + 1)
                    .Publish(c => new EvaluateIntent(c.Saga.CorrelationId, _domain, EvaluationKind.Renewal, c.Saga.RenewalRequested, _clock.GetUtcNow()))),
            When(HeartbeatTimeout.Received)
                .Then(c => StartHalt(c.Saga, Guid.NewGuid(), GovernanceReason.HeartbeatLost, $"no execution heartbeat for {_options.HeartbeatTimeout}"))
                .Publish(c => OwnHalt(c.Saga, GovernanceReason.HeartbeatLost, $"no execution heartbeat for {_options.HeartbeatTimeout}"))
                .Schedule(HaltAcknowledgementTimeout, c => new HaltAcknowledgementOverdue(c.Saga.CorrelationId))
                .TransitionTo(Halting));

        During(Halting,
            When(ExecutionHaltedEvent)
                .Then(c => c.Saga.HaltId = c.Message.HaltId ?? c.Saga.HaltId)
                .Then(c => End(c.Saga, c.Message.Reason, c.Message.Detail))
                .Unschedule(HaltAcknowledgementTimeout)
                .Unschedule(LeaseTimeout)
                .Unschedule(HeartbeatTimeout)
                .TransitionTo(Halted),
            When(ExecutionCompletedEvent)
                .Then(c => End(c.Saga, GovernanceReason.None, "completed before the halt took effect: " + c.Message.Outcome))
                .Unschedule(HaltAcknowledgementTimeout)
                .Unschedule(LeaseTimeout)
                .Unschedule(HeartbeatTimeout)
                .TransitionTo(Completed),
            // Re-drive: the agent did not acknowledge. Quarantine its subject (once) and repeat the halt; the lease
            // bounds the work in any case, and its expiry ends the saga.
            // A halt that has been repeated MaxHaltRepeats times without an acknowledgement and without a known lease to
            // end on would repeat forever: the agent is quarantined by then and its SDK stops at its lease on its own,
            // so the saga ends Expired and says why.
            When(HaltAcknowledgementTimeout.Received, c => HaltRepeatsExhausted(c.Saga))
                .Then(c => c.Saga.HaltDeadlinesMissed++)
                .Then(c => End(c.Saga, GovernanceReason.HaltNotAcknowledged,
                    $"halt not acknowledged after {c.Saga.HaltDeadlinesMissed} deadlines of {_options.HaltAcknowledgementTimeout} and no lease known; ended"))
                .Unschedule(HeartbeatTimeout)
                .TransitionTo(Expired),
            When(HaltAcknowledgementTimeout.Received, c => !HaltRepeatsExhausted(c.Saga))
                .Then(c => c.Saga.HaltDeadlinesMissed++)
                .If(c => !c.Saga.QuarantineRequested, b => b
                    .Then(c => c.Saga.QuarantineRequested = true)
                    .Then(_ => MeshBusMetrics.Quarantines.Add(1, new KeyValuePair<string, object?>("reason", nameof(GovernanceReason.HaltNotAcknowledged))))
                    .Publish(c => signer.Sign(new AgentQuarantined(
                        _domain,
                        c.Saga.Agent,
                        GovernanceReason.HaltNotAcknowledged,
                        $"no ExecutionHalted for intent {c.Saga.CorrelationId} within {_options.HaltAcknowledgementTimeout}",
                        c.Saga.CorrelationId,
                        _clock.GetUtcNow()))))
                .Publish(c => RepeatHalt(c.Saga))
                .If(c => c.Saga.ExpiresAt is null, b => b
                    .Schedule(HaltAcknowledgementTimeout, c => new HaltAcknowledgementOverdue(c.Saga.CorrelationId))),
            When(LeaseTimeout.Received)
                .Then(c => End(c.Saga, GovernanceReason.LeaseExpired, "halt not acknowledged; the lease expired"))
                .Unschedule(HaltAcknowledgementTimeout)
                .Unschedule(HeartbeatTimeout)
                .TransitionTo(Expired));
    }

    /// <summary>Waiting for a decision.</summary>
    public State Submitted { get; } = null!;

    /// <summary>Granted, not yet started.</summary>
    public State Granted { get; } = null!;

    /// <summary>Denied (terminal).</summary>
    public State Denied { get; } = null!;

    /// <summary>Running under a lease.</summary>
    public State Executing { get; } = null!;

    /// <summary>A halt was ordered; waiting for <c>ExecutionHalted</c>.</summary>
    public State Halting { get; } = null!;

    /// <summary>Finished by the agent (terminal).</summary>
    public State Completed { get; } = null!;

    /// <summary>Stopped and acknowledged (terminal).</summary>
    public State Halted { get; } = null!;

    /// <summary>The lease (or the wait for a decision) ran out (terminal).</summary>
    public State Expired { get; } = null!;

    /// <summary>The agent's intent.</summary>
    public Event<IntentSubmitted> IntentSubmittedEvent { get; } = null!;

    /// <summary>A grant.</summary>
    public Event<GrantIssued> GrantIssuedEvent { get; } = null!;

    /// <summary>A denial (of the intent, or of a renewal).</summary>
    public Event<GrantDenied> GrantDeniedEvent { get; } = null!;

    /// <summary>A renewal.</summary>
    public Event<GrantRenewed> GrantRenewedEvent { get; } = null!;

    /// <summary>The agent started.</summary>
    public Event<ExecutionStarted> ExecutionStartedEvent { get; } = null!;

    /// <summary>The agent is alive.</summary>
    public Event<ExecutionHeartbeat> ExecutionHeartbeatEvent { get; } = null!;

    /// <summary>The agent finished.</summary>
    public Event<ExecutionCompleted> ExecutionCompletedEvent { get; } = null!;

    /// <summary>The agent stopped (acknowledging a halt, or on its own at lease expiry).</summary>
    public Event<ExecutionHalted> ExecutionHaltedEvent { get; } = null!;

    /// <summary>A halt reached this execution.</summary>
    public Event<ExecutionHaltRequested> HaltRequestedEvent { get; } = null!;

    /// <summary>A new epoch of this domain's policy was applied.</summary>
    public Event<ExecutionReevaluationRequested> ReevaluationRequestedEvent { get; } = null!;

    /// <summary>No decision in time.</summary>
    public Schedule<IntentLifecycleState, DecisionOverdue> DecisionTimeout { get; } = null!;

    /// <summary>The lease's end.</summary>
    public Schedule<IntentLifecycleState, LeaseExpiryDue> LeaseTimeout { get; } = null!;

    /// <summary>No heartbeat in time.</summary>
    public Schedule<IntentLifecycleState, HeartbeatOverdue> HeartbeatTimeout { get; } = null!;

    /// <summary>No halt acknowledgement in time.</summary>
    public Schedule<IntentLifecycleState, HaltAcknowledgementOverdue> HaltAcknowledgementTimeout { get; } = null!;

    private void ApplyIntent(IntentLifecycleState saga, IntentSubmitted intent)
    {
        // Set once: a later intent under the same id (another agent's, or a replay) never renames the execution's agent.
        if (saga.Agent.Length > 0 && !string.Equals(saga.Agent, intent.Agent, StringComparison.Ordinal))
        {
            return;
        }

        saga.Domain = intent.Domain;
        saga.Agent = intent.Agent;
        saga.TargetDomain = intent.TargetDomain;
        saga.Action = intent.Action;
        saga.Resource = intent.Resource;
        saga.CredentialKeyId ??= JwsPeek.HeaderKeyId(intent.Credential);
        saga.UpdatedAt = _clock.GetUtcNow();
    }

    private void ApplyGrant(IntentLifecycleState saga, GrantIssued grant)
    {
        if (saga.Agent.Length == 0)
        {
            saga.Agent = grant.Agent;
        }

        saga.AgentKey ??= JwsPeek.AgentKey(grant.Grant);
        if (saga.TargetDomain.Length == 0)
        {
            saga.TargetDomain = grant.Domain;
        }

        ApplyLease(saga, grant.Grant, grant.ExpiresAt, grant.LineageIndex);
        saga.PolicyEpoch = Math.Max(saga.PolicyEpoch, JwsPeek.DomainPolicyEpoch(grant.Grant, saga.TargetDomain) ?? 0);
    }

    private void ApplyRenewal(IntentLifecycleState saga, GrantRenewed renewed)
    {
        if (renewed.Renewal <= saga.Renewal)
        {
            return;
        }

        saga.Renewal = renewed.Renewal;
        ApplyLease(saga, renewed.Grant, renewed.ExpiresAt, renewed.LineageIndex);
    }

    private void ApplyLease(IntentLifecycleState saga, string jws, DateTimeOffset expiresAt, long lineageIndex)
    {
        var (jti, iat, exp) = JwsPeek.Claims(jws);
        saga.GrantKeyId = JwsPeek.HeaderKeyId(jws) ?? saga.GrantKeyId;
        saga.GrantId = jti ?? saga.GrantId;
        saga.LeaseLength = iat is { } i && exp is { } e && e > i ? TimeSpan.FromSeconds(e - i) : saga.LeaseLength;
        saga.ExpiresAt = expiresAt;
        saga.LineageIndex = lineageIndex;
        saga.UpdatedAt = _clock.GetUtcNow();
    }

    private void ApplyDenial(IntentLifecycleState saga, GrantDenied denied)
    {
        if (saga.Agent.Length == 0)
        {
            saga.Agent = denied.Agent;
        }

        saga.LineageIndex = denied.LineageIndex;
        End(saga, denied.Reason, denied.Detail);
    }

    private void ApplyStart(IntentLifecycleState saga, ExecutionStarted started)
    {
        if (saga.Domain.Length == 0)
        {
            saga.Domain = started.Domain;
        }

        saga.GrantId ??= started.GrantId;
        saga.LastHeartbeatAt = _clock.GetUtcNow();
        saga.UpdatedAt = saga.LastHeartbeatAt.Value;
    }

    private bool HaltRepeatsExhausted(IntentLifecycleState saga) =>
        saga.ExpiresAt is null && saga.HaltDeadlinesMissed + 1 >= _options.MaxHaltRepeats;

    private void ApplyEndReport(IntentLifecycleState saga, string domain, string agent)
    {
        saga.Agent = agent;
        if (saga.Domain.Length == 0)
        {
            saga.Domain = domain;
        }

        saga.UpdatedAt = _clock.GetUtcNow();
    }

    private void ApplyHeartbeat(IntentLifecycleState saga, ExecutionHeartbeat heartbeat)
    {
        saga.LastHeartbeatSequence = Math.Max(saga.LastHeartbeatSequence, heartbeat.Sequence);
        saga.LastHeartbeatAt = _clock.GetUtcNow();
        saga.UpdatedAt = saga.LastHeartbeatAt.Value;
    }

    private bool RenewalDue(IntentLifecycleState saga)
    {
        if (saga.ExpiresAt is not { } exp || saga.RenewalRequested > saga.Renewal)
        {
            return false;
        }

        var window = saga.LeaseLength is { } lease ? lease * _options.RenewalFraction : _options.HeartbeatTimeout;
        return exp - _clock.GetUtcNow() <= window;
    }

    private TimeSpan LeaseDelay(IntentLifecycleState saga)
    {
        var delay = (saga.ExpiresAt ?? _clock.GetUtcNow()) - _clock.GetUtcNow() + _options.LeaseGrace;
        return delay > TimeSpan.Zero ? delay : TimeSpan.Zero;
    }

    private void StartHalt(IntentLifecycleState saga, Guid haltId, GovernanceReason reason, string detail)
    {
        saga.HaltId = haltId;
        saga.Reason = reason;
        saga.Detail = detail;
        saga.UpdatedAt = _clock.GetUtcNow();
    }

    private void End(IntentLifecycleState saga, GovernanceReason reason, string? detail)
    {
        saga.Reason = reason;
        saga.Detail = detail;
        saga.UpdatedAt = _clock.GetUtcNow();
    }

    private HaltExecution OwnHalt(IntentLifecycleState saga, GovernanceReason reason, string detail) =>
        new(saga.HaltId ?? Guid.NewGuid(), _domain, GovernanceScope.Execution, saga.CorrelationId.ToString(), reason, detail, _clock.GetUtcNow())
        {
            IntentId = saga.CorrelationId,
        };

    private HaltExecution RepeatHalt(IntentLifecycleState saga) =>
        OwnHalt(saga, saga.Reason == GovernanceReason.None ? GovernanceReason.HaltNotAcknowledged : saga.Reason, "halt repeated: not acknowledged in time");
}
