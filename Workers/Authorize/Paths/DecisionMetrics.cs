using System.Diagnostics;
using System.Diagnostics.Metrics;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize.Decisions;

namespace MeshBus.Workers.Authorize.Paths;

/// <summary>Counts decisions by outcome and reason (<c>meshbus.authorize.decisions</c>) and tags the current trace.</summary>
internal static class DecisionMetrics
{
    private static readonly Counter<long> Decisions =
        MeshBusServiceCollectionExtensions.Meter.CreateCounter<long>("meshbus.authorize.decisions", description: "Decisions by outcome and reason");

    public static Decision Count(Decision decision)
    {
        var reason = decision is DenialDecision d ? d.Denial.Reason.ToString() : "None";
        Decisions.Add(1, new KeyValuePair<string, object?>("outcome", decision.Outcome), new KeyValuePair<string, object?>("reason", reason));
        Activity.Current?.SetTag("meshbus.outcome", decision.Outcome);
        return decision;
    }
}
