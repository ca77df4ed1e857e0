using MassTransit;

namespace MeshBus.Persistence.TestHost;

/// <summary>Adds one to a counter; the event id lets a test tell a lost event from a doubly applied one.</summary>
public sealed record CounterIncremented(Guid CounterId, Guid EventId, string? Owner = null);

/// <summary>Schedules the counter's timeout <c>DelayMilliseconds</c> from now (replacing an earlier one).</summary>
public sealed record CounterArmed(Guid CounterId, int DelayMilliseconds);

/// <summary>Cancels the counter's timeout.</summary>
public sealed record CounterDisarmed(Guid CounterId);

/// <summary>The scheduled timeout.</summary>
public sealed record CounterTimedOut(Guid CounterId);

/// <summary>Ends the counter's life: the saga is finalized and its row deleted.</summary>
public sealed record CounterFinished(Guid CounterId);

/// <summary>A message a test schedules and waits for.</summary>
public sealed record Ping(Guid PingId);

/// <summary>State of the test saga.</summary>
public sealed class CounterState : SagaStateMachineInstance, ISagaVersion, IIndexedSaga
{
    public Guid CorrelationId { get; set; }

    public int Version { get; set; }

    public string CurrentState { get; set; } = "";

    public int Count { get; set; }

    public List<Guid> Applied { get; set; } = [];

    public string? Owner { get; set; }

    public Guid? TimeoutTokenId { get; set; }

    public DateTime? TimedOutAt { get; set; }

    public IEnumerable<(string Kind, string Value)> IndexKeys =>
        Owner is null ? [] : [("owner", Owner), ("state", CurrentState)];
}

/// <summary>A small lifecycle: counting, optionally armed with a durable timeout, then timed out or finished.</summary>
public sealed class CounterStateMachine : MassTransitStateMachine<CounterState>
{
    public CounterStateMachine()
    {
        InstanceState(x => x.CurrentState);
        Event(() => Incremented, e => e.CorrelateById(m => m.Message.CounterId));
        Event(() => Armed, e => e.CorrelateById(m => m.Message.CounterId));
        Event(() => Disarmed, e => e.CorrelateById(m => m.Message.CounterId));
        Event(() => Finished, e => e.CorrelateById(m => m.Message.CounterId));
        Schedule(() => Timeout, x => x.TimeoutTokenId, s =>
        {
            s.Delay = TimeSpan.FromSeconds(5);
            s.Received = r => r.CorrelateById(m => m.Message.CounterId);
        });

        Initially(
            When(Incremented).Then(Apply).TransitionTo(Counting));
        During(Counting, TimingOut,
            When(Incremented).Then(Apply),
            When(Finished).Finalize());
        During(Counting,
            When(Armed)
                .Schedule(Timeout, x => new CounterTimedOut(x.Saga.CorrelationId), x => TimeSpan.FromMilliseconds(x.Message.DelayMilliseconds))
                .TransitionTo(TimingOut));
        During(TimingOut,
            When(Disarmed).Unschedule(Timeout).TransitionTo(Counting),
            When(Timeout.Received).Then(x => x.Saga.TimedOutAt = DateTime.UtcNow).TransitionTo(TimedOut));
        During(TimedOut,
            When(Incremented).Then(Apply));
        SetCompletedWhenFinalized();
    }

    public State Counting { get; } = null!;

    public State TimingOut { get; } = null!;

    public State TimedOut { get; } = null!;

    public Event<CounterIncremented> Incremented { get; } = null!;

    public Event<CounterArmed> Armed { get; } = null!;

    public Event<CounterDisarmed> Disarmed { get; } = null!;

    public Event<CounterFinished> Finished { get; } = null!;

    public Schedule<CounterState, CounterTimedOut> Timeout { get; } = null!;

    private static void Apply(BehaviorContext<CounterState, CounterIncremented> context)
    {
        context.Saga.Count++;
        context.Saga.Applied.Add(context.Message.EventId);
        context.Saga.Owner = context.Message.Owner ?? context.Saga.Owner;
    }
}

/// <summary>Retries conflicting writes and sends scheduled messages only after the state is committed.</summary>
public sealed class CounterStateDefinition : SagaDefinition<CounterState>
{
    protected override void ConfigureSaga(IReceiveEndpointConfigurator endpointConfigurator, ISagaConfigurator<CounterState> sagaConfigurator,
        IRegistrationContext context)
    {
        endpointConfigurator.UseMessageRetry(r => r.Intervals(5, 10, 20, 50, 100, 100, 200, 200, 500, 500, 1000, 1000, 1000, 1000, 1000));
        endpointConfigurator.UseInMemoryOutbox(context);
    }
}
