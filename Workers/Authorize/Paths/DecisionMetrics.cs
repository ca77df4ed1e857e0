using System.Diagnostics;
using System.Diagnostics.Metrics;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Decisions;

namespace MeshBus.Workers.Authorize.Paths;

/// <summary>Counts decisions by outcome and reason (<c>meshbus.authorize.decisions</c>), their latency, and tags the current trace.</summary>
internal static class DecisionMetrics
{
    private static readonly Counter<long> Decisions =
        MeshBusServiceCollectionExtensions.Meter.CreateCounter<long>("meshbus.authorize.decisions", description: "Decisions by outcome and reason");

    /// <summary>Counts <paramref name="decision"/> and records its latency from <paramref name="startedAt"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public static Decision Count(Decision decision, long startedAt)
    {
        var reason = decision is DenialDecision d ? d.Denial.Reason.ToString() : "None";
        Decisions.Add(1, new KeyValuePair<string, object?>("outcome", decision.Outcome), new KeyValuePair<string, object?>("reason", reason));
        MeshBusMetrics.DecisionDuration.Record(Stopwatch.GetElapsedTime(startedAt).TotalSeconds, new KeyValuePair<string, object?>("outcome", decision.Outcome));
        Activity.Current?.SetTag("meshbus.outcome", decision.Outcome);
        return decision;
    }
}
