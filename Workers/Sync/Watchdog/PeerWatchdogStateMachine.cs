using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Watchdog;

/// <summary>
/// The sync watchdog of DESIGN.md §5, one instance per peer: every good heartbeat or acknowledgement of the peer
/// (<see cref="PeerSyncProgressed"/>) moves its deadline to the statement's signed time plus <see cref="SyncOptions.PeerStallAfter"/>;
/// when the deadline passes, it publishes <see cref="TrustLapsed"/> (<see cref="GovernanceReason.SyncStalled"/>) once and
/// one <see cref="HaltExecution"/> scoped to the peer, which Enforce fans out to every running execution involving the
/// peer, and marks the peer lapsed in the per-peer sync state (Authorize refuses it until restored). A validly signed
/// contradiction (<see cref="PeerSyncContradicted"/>) lapses trust the same way with its own reason, and stays lapsed.
/// After a stall, the next good statement brings <see cref="TrustRestored"/>; nothing halted is resumed. The deadline is a scheduled message: on
/// Quartz with the domain's database in a fleet, so it survives a Sync restart, and the saga's optimistic concurrency
/// makes exactly one replica apply it. The federation watchdog lapses a peer through it too (a
/// <see cref="GovernanceReason.FederationMismatch"/> contradiction), and restores it (<see cref="Federation.PeerFederationAgreed"/>).
/// </summary>
public sealed class PeerWatchdogStateMachine : MassTransitStateMachine<PeerWatchdogState>
{
    private readonly SyncOptions _options;
    private readonly TimeProvider _clock;
    private readonly string _domain;

    /// <summary>Creates the state machine.</summary>
    public PeerWatchdogStateMachine(IOptions<SyncOptions> options, IOptions<MeshBusOptions> mesh, TimeProvider clock, IPeerSyncStore store)
    {
        _options = options.Value;
        _clock = clock;
        _domain = mesh.Value.Domain;

        InstanceState(x => x.CurrentState);
        Event(() => Progressed, e => e.CorrelateById(m => m.Message.WatchdogId));
        Event(() => Contradicted, e => e.CorrelateById(m => m.Message.WatchdogId));
        Event(() => Rearmed, e =>
        {
            e.CorrelateById(m => m.Message.WatchdogId);
            e.OnMissingInstance(m => m.Discard());
        });
        Event(() => FederationAgreed, e =>
        {
            e.CorrelateById(m => m.Message.WatchdogId);
            e.OnMissingInstance(m => m.Discard());
        });
        Schedule(() => DeadlineDue, x => x.DeadlineToken, s =>
        {
            s.Delay = _options.PeerStallAfter;
            s.Received = r => { r.CorrelateById(m => m.Message.WatchdogId); r.OnMissingInstance(m => m.Discard()); };
        });

        // Duplicates and late arrivals (a deadline of a replaced schedule, a second contradiction) change nothing.
        OnUnhandledEvent(x => x.Ignore());

        Initially(
            When(Progressed)
                .Then(c => Advance(c.Saga, c.Message))
                .Schedule(DeadlineDue, c => new PeerSyncDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga))
                .TransitionTo(Watching),
            When(Contradicted)
                .Then(c => c.Saga.Peer = c.Message.Peer)
                .Then(c => Lapse(c.Saga, c.Message.Reason, c.Message.Detail))
                .ThenAsync(c => store.SetLapseAsync(c.Saga.Peer, c.Saga.LapseReason.ToString(), c.Saga.LapseDetail, c.CancellationToken))
                .Publish(c => LapsedEvent(c.Saga))
                .Publish(c => Halt(c.Saga))
                .TransitionTo(Lapsed));

        During(Watching,
            When(Progressed)
                .Then(c => Advance(c.Saga, c.Message))
                .Schedule(DeadlineDue, c => new PeerSyncDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga)),
            When(Rearmed)
                .Schedule(DeadlineDue, c => new PeerSyncDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga)),
            // Early (a clock step, a scheduler that fired before this replica's clock reached it): wait for the rest.
            When(DeadlineDue.Received, c => !Due(c.Saga))
                .Schedule(DeadlineDue, c => new PeerSyncDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga)),
            When(DeadlineDue.Received, c => Due(c.Saga))
                .Then(c => Lapse(c.Saga, GovernanceReason.SyncStalled,
                    $"no good heartbeat or acknowledgement from {c.Saga.Peer} since {c.Saga.LastSignedAt:O} ({c.Saga.LastStatement}); deadline {c.Saga.Deadline:O} (stall bound {_options.PeerStallAfter})"))
                .ThenAsync(c => store.SetLapseAsync(c.Saga.Peer, c.Saga.LapseReason.ToString(), c.Saga.LapseDetail, c.CancellationToken))
                .Publish(c => LapsedEvent(c.Saga))
                .Publish(c => Halt(c.Saga))
                .TransitionTo(Lapsed),
            When(Contradicted)
                .Then(c => Lapse(c.Saga, c.Message.Reason, c.Message.Detail))
                .ThenAsync(c => store.SetLapseAsync(c.Saga.Peer, c.Saga.LapseReason.ToString(), c.Saga.LapseDetail, c.CancellationToken))
                .Unschedule(DeadlineDue)
                .Publish(c => LapsedEvent(c.Saga))
                .Publish(c => Halt(c.Saga))
                .TransitionTo(Lapsed));

        During(Lapsed,
            // Only a stall is repaired by the peer speaking again, and only by a statement signed after the lapse (a late
            // copy of an old heartbeat proves nothing new). A contradiction the peer signed stays: it is evidence, and
            // an operator clears it after looking at it (docs/operations.md).
            When(Progressed, c => c.Saga.LapseReason == GovernanceReason.SyncStalled && (c.Saga.LastSignedAt is not { } last || c.Message.SignedAt > last))
                .Then(c => Advance(c.Saga, c.Message))
                .ThenAsync(c => store.SetLapseAsync(c.Saga.Peer, null, "", c.CancellationToken))
                .Publish(c => new TrustRestored(_domain, GovernanceScope.Peer, c.Saga.Peer, _clock.GetUtcNow()))
                .Schedule(DeadlineDue, c => new PeerSyncDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga))
                .TransitionTo(Watching),
            // Lapsed by the federation watchdog: the peer's statements still count (it is heard from), and its first
            // heartbeat that announces this domain's federation policy again restores it.
            When(Progressed, c => c.Saga.LapseReason == GovernanceReason.FederationMismatch)
                .Then(c => Advance(c.Saga, c.Message)),
            When(FederationAgreed, c => c.Saga.LapseReason == GovernanceReason.FederationMismatch)
                .ThenAsync(c => store.SetLapseAsync(c.Saga.Peer, null, "", c.CancellationToken))
                .Publish(c => new TrustRestored(_domain, GovernanceScope.Peer, c.Saga.Peer, _clock.GetUtcNow()))
                .Schedule(DeadlineDue, c => new PeerSyncDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga))
                .TransitionTo(Watching));
    }

    /// <summary>Hearing from the peer; the deadline is ahead.</summary>
    public State Watching { get; } = null!;

    /// <summary>Trust in the peer lapsed; waiting for a good statement.</summary>
    public State Lapsed { get; } = null!;

    /// <summary>A good statement of the peer.</summary>
    public Event<PeerSyncProgressed> Progressed { get; } = null!;

    /// <summary>A contradiction the peer signed.</summary>
    public Event<PeerSyncContradicted> Contradicted { get; } = null!;

    /// <summary>Sync started: the pending deadline is scheduled again.</summary>
    public Event<WatchdogRearm> Rearmed { get; } = null!;

    /// <summary>The federation watchdog saw the peer announce this domain's federation policy again.</summary>
    public Event<Federation.PeerFederationAgreed> FederationAgreed { get; } = null!;

    /// <summary>The stall deadline.</summary>
    public Schedule<PeerWatchdogState, PeerSyncDeadlineDue> DeadlineDue { get; } = null!;

    private void Advance(PeerWatchdogState saga, PeerSyncProgressed message)
    {
        saga.Peer = message.Peer;
        if (saga.LastSignedAt is { } last && message.SignedAt <= last)
        {
            // An older statement delivered late never moves the deadline back.
            return;
        }

        saga.LastSignedAt = message.SignedAt;
        saga.LastStatement = message.What;
        saga.Deadline = message.SignedAt + _options.PeerStallAfter;
    }

    private bool Due(PeerWatchdogState saga) => saga.Deadline is not { } deadline || _clock.GetUtcNow() >= deadline;

    private TimeSpan Remaining(PeerWatchdogState saga)
    {
        var remaining = (saga.Deadline ?? _clock.GetUtcNow()) - _clock.GetUtcNow();
        return remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
    }

    private static void Lapse(PeerWatchdogState saga, GovernanceReason reason, string detail)
    {
        saga.Lapses++;
        saga.LapseReason = reason;
        saga.LapseDetail = detail;
    }

    private TrustLapsed LapsedEvent(PeerWatchdogState saga) =>
        new(_domain, GovernanceScope.Peer, saga.Peer, saga.LapseReason, saga.LapseDetail, _clock.GetUtcNow());

    private HaltExecution Halt(PeerWatchdogState saga) =>
        new(PeerWatchdog.HaltIdOf(saga.Peer, saga.Lapses), _domain, GovernanceScope.Peer, saga.Peer, saga.LapseReason,
            $"trust in {saga.Peer} lapsed: {saga.LapseDetail}", _clock.GetUtcNow());
}

/// <summary>The watchdogs' endpoint: one peer's events conflict only with each other (optimistic concurrency, retried).</summary>
public sealed class PeerWatchdogSagaDefinition : SagaDefinition<PeerWatchdogState>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public PeerWatchdogSagaDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "sync-peer-watchdog");
        ConcurrentMessageLimit = 8;
    }

    /// <inheritdoc />
    protected override void ConfigureSaga(IReceiveEndpointConfigurator endpointConfigurator, ISagaConfigurator<PeerWatchdogState> sagaConfigurator, IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Handle<ConcurrencyException>();
            r.Intervals(10, 50, 100, 200, 500);
        });
}
