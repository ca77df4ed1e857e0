using System.Collections.Concurrent;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Ledger.Decisions;
using MeshBus.Trust;
using MeshBus.Workers.Sync.Bridge;
using MeshBus.Workers.Tests.Authorize;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Xunit;

namespace MeshBus.Workers.Tests.Federation;

/// <summary>
/// The cross-domain path over the bridge in embedded mode: two domains' Authorize workers on two in-memory buses, each
/// with the Sync bridge on one in-process network (the same envelope code, checks and relay table as over NATS). Nothing
/// is handed over by the test: the endorsement and the answer cross only through the bridge.
/// </summary>
public sealed class EmbeddedBridgeTests
{
    private const string T = CrossDomainHarness.TargetDomain;

    internal static Func<FederatedDomain, TrustConfig, string[], BridgeSide> Over(InProcessFederationNetwork network) =>
        (domain, trust, peers) => new BridgeSide(new FederationBridgeWorker(), s =>
        {
            s.AddSingleton(new BridgeKeys(domain.Signers[KeyUsage.Envelope], trust, peers));
            s.AddSingleton(network.LinkFor(domain.Name));
        });

    internal static async Task<(CrossDomainHarness X, TestAgent Agent)> ReadyAsync(InProcessFederationNetwork? network = null)
    {
        var x = await CrossDomainHarness.StartAsync(bridge: Over(network ?? new InProcessFederationNetwork()));
        await x.AllFreshAsync();
        await x.LoadEgressAsync();
        return (x, new TestAgent(x.OriginKeys));
    }

    internal static FederationBridge BridgeOf(AuthorizeHarness side) => side.Services.GetRequiredService<FederationBridge>();

    [Fact(Timeout = 60_000)]
    public async Task Cross_domain_intent_is_granted_over_the_bridge_and_the_grant_reaches_the_agents_queue_at_home()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(x.Origin.Time.GetUtcNow(), target: T);

        await x.Origin.SubmitAsync(intent);

        // O delivers T's grant to the agent's own queue, as it delivers its own grants.
        var grant = Assert.IsType<GrantIssued>(await x.Origin.AnswerAsync(intent.IntentId));
        var sent = x.Origin.Recorder.Sent.Single(s => s.Message is GrantIssued g && g.IntentId == intent.IntentId);
        Assert.EndsWith("/" + AgentQueue.Name(agent.Subject), sent.Destination!.AbsolutePath, StringComparison.Ordinal);
        // The agent's SDK verifies it with T's keys as O's trust config pins them.
        var verified = x.VerifyGrant(grant, agent, intent);
        Assert.True(verified.IsValid, verified.Detail);
        Assert.Equal(T, verified.Value!.Issuer);
        // Both lineages hold their part: O its egress decision, T the decision it granted.
        var egress = DecisionRecord.Parse((await x.Origin.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId)))!.Data);
        Assert.Equal(DecisionRecord.EgressKind, egress.Kind);
        var decisionEntry = (await x.Target.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId)))!;
        Assert.True(DecisionRecord.Parse(decisionEntry.Data).Allowed);
        Assert.Equal(decisionEntry.Index, grant.LineageIndex);
        Assert.Equal(0, BridgeOf(x.Origin).Counters.DroppedTotal);
        Assert.Equal(0, BridgeOf(x.Target).Counters.DroppedTotal);
    }

    /// <summary>Collects the names of the metrics the host's OpenTelemetry pipeline exports.</summary>
    private sealed class CollectingExporter : BaseExporter<Metric>
    {
        public ConcurrentBag<string> Exported { get; } = [];

        public override ExportResult Export(in Batch<Metric> batch)
        {
            foreach (var metric in batch)
            {
                Exported.Add(metric.MeterName + "/" + metric.Name);
            }

            return ExportResult.Success;
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task The_bridges_counters_are_exported_through_the_hosts_OpenTelemetry_metrics()
    {
        var exporter = new CollectingExporter();
        var readers = new System.Collections.Concurrent.ConcurrentBag<BaseExportingMetricReader>();
        var network = new InProcessFederationNetwork();
        var bridge = Over(network);
        var x = await CrossDomainHarness.StartAsync(bridge: (domain, trust, peers) =>
        {
            var side = bridge(domain, trust, peers);
            return side with
            {
                Configure = s =>
                {
                    side.Configure(s);
                    s.ConfigureOpenTelemetryMeterProvider(m =>
                    {
                        var reader = new BaseExportingMetricReader(exporter);
                        readers.Add(reader);
                        m.AddReader(reader);
                    });
                },
            };
        });
        await using var _ = x;
        await x.AllFreshAsync();
        await x.LoadEgressAsync();
        var agent = new TestAgent(x.OriginKeys);
        var intent = agent.Intent(x.Origin.Time.GetUtcNow(), target: T);

        await x.Origin.SubmitAsync(intent);
        Assert.IsType<GrantIssued>(await x.Origin.AnswerAsync(intent.IntentId));

        // Collected through this test's own reader: the host also serves /metrics (a pull reader that only a scrape
        // flushes), so the provider's ForceFlush as a whole says nothing about this one.
        Assert.NotNull(x.Target.Services.GetRequiredService<MeterProvider>());
        Assert.All(readers, r => Assert.True(r.Collect(10_000)));
        Assert.Contains(FederationCounters.MeterName + "/meshbus.federation.delivered", exporter.Exported);
        Assert.Contains(FederationCounters.MeterName + "/meshbus.federation.relayed", exporter.Exported);
    }

    [Fact(Timeout = 60_000)]
    public async Task Denial_by_the_targets_policy_returns_over_the_bridge_to_the_agent()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        x.Target.Policy.AllowedActions.Clear();
        var intent = agent.Intent(x.Origin.Time.GetUtcNow(), target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = Assert.IsType<GrantDenied>(await x.Origin.AnswerAsync(intent.IntentId));
        Assert.Equal(T, denied.Domain);
        Assert.NotNull(denied.LineageIndex);
        Assert.Single(x.Endorsements(intent.IntentId));
    }

    [Fact(Timeout = 60_000)]
    public async Task Denial_by_the_origins_egress_policy_never_crosses_the_bridge()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(x.Origin.Time.GetUtcNow(), action: "delete", target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = Assert.IsType<GrantDenied>(await x.Origin.AnswerAsync(intent.IntentId));
        Assert.Equal(TestDomainKeys.Domain, denied.Domain);
        Assert.Contains("no-remote-delete", denied.MatchedRules);
        Assert.Empty(x.Endorsements(intent.IntentId));
        Assert.DoesNotContain(x.Target.Recorder.ConsumedOf<IntentEndorsed>(), m => m.Message.IntentId == intent.IntentId);
    }
}
