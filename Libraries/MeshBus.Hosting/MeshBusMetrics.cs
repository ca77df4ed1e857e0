using System.Diagnostics.Metrics;

namespace MeshBus.Hosting;

/// <summary>
/// The instruments an operator scrapes (<c>/metrics</c> beside the health endpoints, or OTLP), all on the
/// <c>MeshBus</c> meter; docs/operations.md names each with its Prometheus name.
/// </summary>
public static class MeshBusMetrics
{
    /// <summary>Decision latency, from an intent's arrival at a decision path to its decision.</summary>
    public static readonly Histogram<double> DecisionDuration = MeshBusServiceCollectionExtensions.Meter.CreateHistogram<double>(
        "meshbus.authorize.decision.duration", unit: "s", description: "Time from an intent's arrival at Authorize to its decision, by outcome");

    /// <summary>Quarantines requested by Enforce (a halt not acknowledged in time).</summary>
    public static readonly Counter<long> Quarantines = MeshBusServiceCollectionExtensions.Meter.CreateCounter<long>(
        "meshbus.enforce.quarantines", description: "Agents quarantined for a halt not acknowledged in time, by reason");

    /// <summary>The name of the per-peer sync age gauge (<see cref="ObservePeerSyncAge"/>).</summary>
    public const string PeerSyncAgeName = "meshbus.sync.peer.age";

    /// <summary>
    /// The hook for the per-peer sync age: the owner of the per-peer sync state registers, once per process, a callback
    /// giving each peer's age of its latest verified heartbeat in seconds, tagged <c>peer</c>.
    /// </summary>
    public static ObservableGauge<double> ObservePeerSyncAge(Func<IEnumerable<Measurement<double>>> observe) =>
        MeshBusServiceCollectionExtensions.Meter.CreateObservableGauge(PeerSyncAgeName, observe, unit: "s",
            description: "Age of each peer's latest verified heartbeat");

    /// <summary>Executions by lifecycle state, from the saga store (registered by the Enforce worker).</summary>
    public static ObservableGauge<long> ObserveExecutions(Func<IEnumerable<Measurement<long>>> observe) =>
        MeshBusServiceCollectionExtensions.Meter.CreateObservableGauge("meshbus.enforce.executions", observe,
            description: "Intent lifecycles by state, as stored");
}
