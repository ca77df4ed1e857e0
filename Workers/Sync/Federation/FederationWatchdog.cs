using System.Security.Cryptography;
using System.Text;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Sync.Watchdog;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Federation;

/// <summary>Sync-internal: a verified heartbeat of a peer was recorded; whether it announces this domain's federation policy.</summary>
/// <param name="WatchdogId">The federation's watchdog (<see cref="FederationWatchdog.IdOf"/>).</param>
/// <param name="Federation">The federation.</param>
/// <param name="Peer">The peer member.</param>
/// <param name="Agrees">True when the peer announces the federation digest this domain applied.</param>
/// <param name="Detail">Both digests, for the lapse's explanation.</param>
public sealed record FederationPeerObserved(Guid WatchdogId, string Federation, string Peer, bool Agrees, string Detail);

/// <summary>Scheduled: the federation's disagreement deadline is due.</summary>
/// <param name="WatchdogId">The federation's watchdog.</param>
public sealed record FederationDeadlineDue(Guid WatchdogId);

/// <summary>Sync-internal, to a peer's watchdog: the peer announces this domain's federation policy again.</summary>
/// <param name="WatchdogId">The peer's watchdog (<see cref="PeerWatchdog.IdOf"/>).</param>
/// <param name="Peer">The peer.</param>
public sealed record PeerFederationAgreed(Guid WatchdogId, string Peer);

/// <summary>The federation's watchdog: one instance per federation, the same id on every replica.</summary>
public static class FederationWatchdog
{
    /// <summary>The watchdog id of <paramref name="federation"/>.</summary>
    public static Guid IdOf(string federation)
    {
        ArgumentNullException.ThrowIfNull(federation);
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("meshbus-federation-watchdog/v1\n" + federation));
        return new Guid(hash.AsSpan(0, 16));
    }
}

/// <summary>The federation's watchdog, stored durably (shared by every Sync replica of the domain).</summary>
public sealed class FederationWatchdogState : SagaStateMachineInstance, ISagaVersion
{
    /// <summary><see cref="FederationWatchdog.IdOf"/> of the federation.</summary>
    public Guid CorrelationId { get; set; }

    /// <summary>Optimistic concurrency version.</summary>
    public int Version { get; set; }

    /// <summary>The state's name.</summary>
    public string CurrentState { get; set; } = "";

    /// <summary>The federation.</summary>
    public string Federation { get; set; } = "";

    /// <summary>The peers whose latest heartbeat announces another federation policy, one per line.</summary>
    public string Diverged { get; set; } = "";

    /// <summary>The peers whose trust this watchdog lapsed, one per line.</summary>
    public string Lapsed { get; set; } = "";

    /// <summary>The latest disagreement's explanation.</summary>
    public string Detail { get; set; } = "";

    /// <summary>Since when the members disagree without a break.</summary>
    public DateTimeOffset? DivergedSince { get; set; }

    /// <summary>When the disagreement lapses trust: <see cref="DivergedSince"/> plus <see cref="SyncOptions.FederationMismatchAfter"/>.</summary>
    public DateTimeOffset? Deadline { get; set; }

    /// <summary>The scheduled deadline message.</summary>
    public Guid? DeadlineToken { get; set; }
}

/// <summary>
/// The sync watchdog of the federation epoch (DESIGN.md §5): the members must decide under one federation policy. Every
/// recorded peer heartbeat says whether the peer announces the digest this domain applied. The first disagreement starts
/// the deadline (<see cref="SyncOptions.FederationMismatchAfter"/>: time for a new epoch to reach every member, while
/// Authorize already makes intents involving that peer wait and then refuses them <c>FederationMismatch</c>); agreement
/// of every peer before it cancels it. When it passes, trust in every peer that still disagrees lapses
/// (<see cref="GovernanceReason.FederationMismatch"/>) through that peer's own watchdog, which publishes the one
/// <see cref="TrustLapsed"/> and the one peer-scoped <see cref="HaltExecution"/>; a peer that starts to disagree while the
/// federation is lapsed lapses at once. A lapsed peer is restored (<see cref="TrustRestored"/>, nothing resumed) by its
/// first heartbeat that announces this domain's digest again. The deadline is a scheduled message on the domain's
/// scheduler, like the peers' watchdogs.
/// </summary>
public sealed class FederationWatchdogStateMachine : MassTransitStateMachine<FederationWatchdogState>
{
    private readonly SyncOptions _options;
    private readonly TimeProvider _clock;

    /// <summary>Creates the state machine.</summary>
    public FederationWatchdogStateMachine(IOptions<SyncOptions> options, TimeProvider clock)
    {
        _options = options.Value;
        _clock = clock;

        InstanceState(x => x.CurrentState);
        Event(() => Observed, e => e.CorrelateById(m => m.Message.WatchdogId));
        Event(() => Rearmed, e =>
        {
            e.CorrelateById(m => m.Message.WatchdogId);
            e.OnMissingInstance(m => m.Discard());
        });
        Schedule(() => DeadlineDue, x => x.DeadlineToken, s =>
        {
            s.Delay = _options.FederationMismatchAfter;
            s.Received = r => { r.CorrelateById(m => m.Message.WatchdogId); r.OnMissingInstance(m => m.Discard()); };
        });
        OnUnhandledEvent(x => x.Ignore());

        Initially(
            When(Observed, c => c.Message.Agrees)
                .Then(c => c.Saga.Federation = c.Message.Federation)
                .TransitionTo(Agreeing),
            When(Observed, c => !c.Message.Agrees)
                .Then(c => Diverge(c.Saga, c.Message))
                .Schedule(DeadlineDue, c => new FederationDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga))
                .TransitionTo(Diverging));

        During(Agreeing,
            When(Observed, c => !c.Message.Agrees)
                .Then(c => Diverge(c.Saga, c.Message))
                .Schedule(DeadlineDue, c => new FederationDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga))
                .TransitionTo(Diverging));

        During(Diverging,
            When(Rearmed)
                .Schedule(DeadlineDue, c => new FederationDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga)),
            When(Observed, c => !c.Message.Agrees)
                .Then(c => Diverge(c.Saga, c.Message)),
            When(Observed, c => c.Message.Agrees && Remove(c.Saga.Diverged, c.Message.Peer).Length > 0)
                .Then(c => c.Saga.Diverged = Remove(c.Saga.Diverged, c.Message.Peer)),
            When(Observed, c => c.Message.Agrees && Remove(c.Saga.Diverged, c.Message.Peer).Length == 0)
                .Then(c => Agree(c.Saga))
                .Unschedule(DeadlineDue)
                .TransitionTo(Agreeing),
            When(DeadlineDue.Received, c => !Due(c.Saga))
                .Schedule(DeadlineDue, c => new FederationDeadlineDue(c.Saga.CorrelationId), c => Remaining(c.Saga)),
            When(DeadlineDue.Received, c => Due(c.Saga))
                .ThenAsync(c => LapseAsync(c, Peers(c.Saga.Diverged)))
                .TransitionTo(LapsedState));

        During(LapsedState,
            // A peer that starts to disagree now lapses at once: the federation is past its bound already.
            When(Observed, c => !c.Message.Agrees && !Peers(c.Saga.Lapsed).Contains(c.Message.Peer))
                .Then(c => Diverge(c.Saga, c.Message))
                .ThenAsync(c => LapseAsync(c, [c.Message.Peer])),
            When(Observed, c => c.Message.Agrees && Peers(c.Saga.Lapsed).Contains(c.Message.Peer))
                .Then(c =>
                {
                    c.Saga.Lapsed = Remove(c.Saga.Lapsed, c.Message.Peer);
                    c.Saga.Diverged = Remove(c.Saga.Diverged, c.Message.Peer);
                })
                .Publish(c => new PeerFederationAgreed(PeerWatchdog.IdOf(c.Message.Peer), c.Message.Peer))
                .If(c => c.Saga.Lapsed.Length == 0 && c.Saga.Diverged.Length == 0, x => x
                    .Then(c => Agree(c.Saga))
                    .TransitionTo(Agreeing)));
    }

    /// <summary>Every peer announces this domain's federation policy.</summary>
    public State Agreeing { get; } = null!;

    /// <summary>Some peer announces another; the deadline runs.</summary>
    public State Diverging { get; } = null!;

    /// <summary>The deadline passed: trust in the disagreeing peers lapsed.</summary>
    public State LapsedState { get; } = null!;

    /// <summary>A recorded peer heartbeat.</summary>
    public Event<FederationPeerObserved> Observed { get; } = null!;

    /// <summary>Sync started: the pending deadline is scheduled again.</summary>
    public Event<WatchdogRearm> Rearmed { get; } = null!;

    /// <summary>The disagreement deadline.</summary>
    public Schedule<FederationWatchdogState, FederationDeadlineDue> DeadlineDue { get; } = null!;

    private void Diverge(FederationWatchdogState saga, FederationPeerObserved m)
    {
        saga.Federation = m.Federation;
        saga.Detail = m.Detail;
        if (!Peers(saga.Diverged).Contains(m.Peer))
        {
            saga.Diverged = string.Join('\n', Peers(saga.Diverged).Append(m.Peer).Order(StringComparer.Ordinal));
        }

        if (saga.DivergedSince is null)
        {
            saga.DivergedSince = _clock.GetUtcNow();
            saga.Deadline = saga.DivergedSince + _options.FederationMismatchAfter;
        }
    }

    private static void Agree(FederationWatchdogState saga)
    {
        saga.Diverged = "";
        saga.DivergedSince = null;
        saga.Deadline = null;
    }

    private static async Task LapseAsync(BehaviorContext<FederationWatchdogState> c, IEnumerable<string> peers)
    {
        foreach (var peer in peers)
        {
            if (!Peers(c.Saga.Lapsed).Contains(peer))
            {
                c.Saga.Lapsed = string.Join('\n', Peers(c.Saga.Lapsed).Append(peer).Order(StringComparer.Ordinal));
            }

            await c.Publish(new PeerSyncContradicted(PeerWatchdog.IdOf(peer), peer, GovernanceReason.FederationMismatch,
                $"members of federation {c.Saga.Federation} disagree since {c.Saga.DivergedSince:O} (bound until {c.Saga.Deadline:O}): {c.Saga.Detail}"));
        }
    }

    private bool Due(FederationWatchdogState saga) => saga.Deadline is not { } deadline || _clock.GetUtcNow() >= deadline;

    private TimeSpan Remaining(FederationWatchdogState saga)
    {
        var remaining = (saga.Deadline ?? _clock.GetUtcNow()) - _clock.GetUtcNow();
        return remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero;
    }

    private static string[] Peers(string list) => list.Length == 0 ? [] : list.Split('\n');

    private static string Remove(string list, string peer) => string.Join('\n', Peers(list).Where(p => p != peer));
}

/// <summary>The federation watchdog's endpoint (optimistic concurrency, retried).</summary>
public sealed class FederationWatchdogSagaDefinition : SagaDefinition<FederationWatchdogState>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public FederationWatchdogSagaDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "sync-federation-watchdog");
        ConcurrentMessageLimit = 1;
    }

    /// <inheritdoc />
    protected override void ConfigureSaga(IReceiveEndpointConfigurator endpointConfigurator, ISagaConfigurator<FederationWatchdogState> sagaConfigurator, IRegistrationContext context) =>
        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Handle<ConcurrencyException>();
            r.Intervals(10, 50, 100, 200, 500);
        });
}
