using System.Diagnostics;
using MassTransit;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Embedded;
using MeshBus.Federation;
using MeshBus.Integration.Tests.Processes;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.Policy.Bundles;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.DependencyInjection;
using NATS.Client.JetStream;
using NATS.Net;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Federation;

/// <summary>
/// Issue 17's cross-domain path as a fleet runs it: two domains, each with its four workers as processes on a RabbitMQ
/// virtual host and a PostgreSQL database of its own, joined only by the Sync workers' bridge over the shared NATS
/// JetStream, each as its own NATS user (the users of scripts/nats-test-config.sh). The agent uses the SDK on its home
/// domain's virtual host only. A grant decided by the target, renewed through it and completed; a halt ordered in the
/// origin that reaches the agent and ends the target's record; a denial by the target's policy and one by the origin's
/// egress policy; both lineages hold their part. The same scenario in one process is NatsEmbeddedFederationTests.
/// </summary>
[Collection("nats-rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class NatsRabbitMqFederationTests(NatsFixture nats, RabbitMqFixture rabbit, PostgresFixture postgres, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];
    private readonly Dictionary<string, Side> _sides = [];

    private static string O => NatsDomainUsers.Origin.Domain;

    private static string T => NatsDomainUsers.Target.Domain;

    /// <summary>One domain: its virtual host, database and worker run.</summary>
    private sealed record Side(string Domain, string VirtualHost, string Database, WorkerRun Run, NatsDomainUser User);

    public async Task InitializeAsync()
    {
        await DeleteStreamsAsync();
        foreach (var user in new[] { NatsDomainUsers.Origin, NatsDomainUsers.Target })
        {
            var vhost = $"fed-{Subjects.Token(user.Domain)}-{_suffix}";
            await rabbit.RabbitMqCtlAsync(["add_vhost", vhost]);
            await rabbit.RabbitMqCtlAsync(["set_permissions", "-p", vhost, Uri.UnescapeDataString(rabbit.AmqpUri.UserInfo.Split(':')[0]), ".*", ".*", ".*"]);
            var database = await postgres.CreateDatabaseAsync("fed");
            var amqp = new UriBuilder(rabbit.AmqpUri) { Path = "/" + Uri.EscapeDataString(vhost) }.Uri;
            _sides[user.Domain] = new Side(user.Domain, vhost, database, new WorkerRun(amqp, "federation", output, user.Domain), user);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var side in _sides.Values)
        {
            try
            {
                await side.Run.DisposeAsync();
            }
            finally
            {
                await postgres.DropDatabaseAsync(side.Database);
                // The virtual host goes with everything the run declared in it.
                await rabbit.RabbitMqCtlAsync(["delete_vhost", side.VirtualHost]);
            }
        }

        await DeleteStreamsAsync();
    }

    [Fact(Timeout = 420_000)]
    public async Task Over_two_virtual_hosts_and_jetstream_a_cross_domain_intent_is_granted_renewed_completed_halted_from_the_origin_and_denied_by_either_policy()
    {
        var clock = Stopwatch.StartNew();
        var now = DateTimeOffset.UtcNow;
        var origin = _sides[O];
        var target = _sides[T];
        var originKeys = DomainAdministration.Initialize(Path.Combine(origin.Run.DataDirectory, "keys"), O, now).DirectoryPath;
        var targetKeys = DomainAdministration.Initialize(Path.Combine(target.Run.DataDirectory, "keys"), T, now).DirectoryPath;
        EmbeddedFederation.PinEachOther([originKeys, targetKeys], now);
        var originPolicy = Sign(origin, originKeys, "policy.json", now, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{O}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["**"]}}]}
            """);
        var egressPolicy = Sign(origin, originKeys, "egress.json", now, $$$"""
            {"format":"meshbus-policy/v1","scope":"egress","domain":"{{{O}}}","epoch":1,
             "rules":[{"id":"deploy-to-target","effect":"allow","match":{"actions":["deploy"],"resources":["**"]},
                       "condition":"target.domain == '{{{T}}}'"}]}
            """);
        var targetPolicy = Sign(target, targetKeys, "policy.json", now, $$$"""
            {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{T}}}","epoch":1,
             "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://target/**"]},
                       "condition":"'deployers' in agent.claims.groups","obligations":{"maxLeaseSeconds":60}}]}
            """);

        foreach (var (side, keys, policy) in new[] { (origin, originKeys, originPolicy), (target, targetKeys, targetPolicy) })
        {
            var settings = new Dictionary<string, string>
            {
                ["Storage__Provider"] = "Postgres",
                ["Storage__ConnectionString"] = side.Database,
                ["Authorize__LineageTimeoutMs"] = "15000",
                ["Federation__Link"] = "Nats",
                ["Federation__Nats__Url"] = nats.Url,
                ["Federation__Nats__User"] = side.User.User,
                ["Federation__Nats__Password"] = side.User.Password,
            };
            if (side == origin)
            {
                settings["Authorize__EgressPolicyBundleFile"] = egressPolicy;
            }

            foreach (var worker in new[] { "sync", "authorize", "enforce", "lineage" })
            {
                side.Run.Start(worker, keys, policy, settings, $"{Subjects.Token(side.Domain)}-{worker}");
            }
        }

        await Task.WhenAll(_sides.Values.SelectMany(s => s.Run.Workers).Select(w => w.WaitReadyAsync(ReadyTimeout)));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: both domains' workers ready");

        // The agent's bus: the origin's virtual host only.
        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((_, cfg) => origin.Run.ConfigureHost(cfg)));
        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync(new CancellationTokenSource(StepTimeout).Token);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(300));
        Guid haltedIntent;
        try
        {
            var agentKey = Ed25519Keys.NewPrivateKey();
            var subject = O + "/agents/deployer";
            origin.Run.RemoveAtEnd(AgentQueue.Name(subject));
            var originDomainKeys = DomainKeys.Load(originKeys, KeyUsage.Credential);
            var credential = Credentials.Issue(new CredentialClaims(O, subject, "c-1", Base64Url.Encode(Ed25519Keys.PublicKeyOf(agentKey)),
                new AgentAttributes("sha256:test", "test", "team-web", ["deployers"]), now, now, now.AddHours(1)), originDomainKeys.Signer(KeyUsage.Credential, now));
            await using var agent = await MeshBusAgent.ConnectAsync(bus, new MeshBusAgentOptions
            {
                Subject = subject,
                HomeDomain = O,
                PrivateKey = agentKey,
                Credential = credential,
                KeyResolver = originDomainKeys.LoadTrust(), // pins the target's root: its grants verify
                HeartbeatInterval = TimeSpan.FromHours(1), // heartbeats are sent by the test
                DecisionTimeout = StepTimeout,
                EntityPrefix = origin.Run.Prefix,
            }, bound.Token);

            var deploy = new IntentRequest("deploy", "k8s://target/ns/web") { TargetDomain = T, MaxDuration = TimeSpan.FromMinutes(5) };

            // Until both domains have exchanged heartbeats and key sets over the bridge, a cross-domain intent is denied
            // (SyncStale, unknown peer keys): ask until the target grants.
            IntentOutcome outcome;
            while ((outcome = await agent.SubmitIntentAsync(deploy, bound.Token)).Lease is null)
            {
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: not yet: {outcome.Denial?.Reason} {outcome.Denial?.Detail}");
                await Task.Delay(1000, bound.Token);
            }

            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: granted over the bridge");
            var lease = outcome.Lease;
            Assert.Equal(T, lease.Claims.Issuer);
            await lease.StartAsync(bound.Token);
            await EventuallyAsync("the target's record Executing", async () => await StateAsync(target, lease.IntentId) == "Executing", bound.Token);
            await using (var targetLog = await LineageLogs.OpenPostgresAsync(target.Database))
            await using (var originLog = await LineageLogs.OpenPostgresAsync(origin.Database))
            {
                // The target decided and recorded the grant; the origin recorded its egress decision.
                Assert.True(DecisionRecord.Parse((await targetLog.GetByKeyAsync(DecisionRecord.DecisionKey(lease.IntentId), bound.Token))!.Data).Allowed);
                Assert.Equal(DecisionRecord.EgressKind, DecisionRecord.Parse((await originLog.GetByKeyAsync(DecisionRecord.DecisionKey(lease.IntentId), bound.Token))!.Data).Kind);
            }

            // Renewed through the target: heartbeats cross, the renewal comes back. The lease is 60 s, so the renewal,
            // asked for in its second half, has 30 s for the round trip: on this shared machine a JetStream publish
            // acknowledgement has been seen to time out (5 s) several times in a row before the pump's retry got through.
            var renewalBefore = lease.Claims.Renewal;
            while (lease.Claims.Renewal == renewalBefore && !lease.Token.IsCancellationRequested)
            {
                await lease.HeartbeatAsync();
                await Task.Delay(TimeSpan.FromSeconds(1), bound.Token);
            }

            Assert.True(lease.Claims.Renewal > renewalBefore, $"the lease ended without a renewal: {lease.StopReason} {lease.StopDetail}\n{string.Join("\n", _sides.Values.Select(s => s.Run.Output))}");
            await lease.CompleteAsync("done", bound.Token);
            await EventuallyAsync("the target's record Completed", async () => await StateAsync(target, lease.IntentId) == "Completed", bound.Token);
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: renewed and completed");

            // An operator halt in the origin reaches the agent and ends the target's record Halted.
            var second = await agent.SubmitIntentAsync(deploy, bound.Token);
            Assert.True(second.Lease is not null, $"denied {second.Denial?.Reason}: {second.Denial?.Detail}");
            var halted = second.Lease;
            haltedIntent = halted.IntentId;
            await halted.StartAsync(bound.Token);
            await EventuallyAsync("the second record Executing", async () => await StateAsync(target, halted.IntentId) == "Executing", bound.Token);
            await bus.Publish(new HaltExecution(Guid.NewGuid(), O, GovernanceScope.Execution, halted.IntentId.ToString(),
                GovernanceReason.OperatorHalt, "test: operator halt", DateTimeOffset.UtcNow)
            { IntentId = halted.IntentId }, bound.Token);
            await EventuallyAsync("the halt at the agent", () => Task.FromResult(halted.Token.IsCancellationRequested), bound.Token);
            await EventuallyAsync("the target's record Halted", async () => await StateAsync(target, halted.IntentId) == "Halted", bound.Token);
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: halted from the origin");

            // Denied by the target's policy (no rule for that resource): decided and recorded by the target.
            var byTarget = await agent.SubmitIntentAsync(new IntentRequest("deploy", "k8s://elsewhere/ns/web") { TargetDomain = T }, bound.Token);
            Assert.True(byTarget.Denial is { RejectedByAgent: false }, "expected the target's denial");
            Assert.Equal(GovernanceReason.NoMatchingRule, byTarget.Denial!.Reason);
            // Denied by the origin's egress policy: never crosses, so the target has no record of it.
            var byEgress = await agent.SubmitIntentAsync(new IntentRequest("delete", "k8s://target/ns/web") { TargetDomain = T }, bound.Token);
            Assert.True(byEgress.Denial is { RejectedByAgent: false }, "expected the origin's egress denial");
            Assert.Equal(GovernanceReason.NoMatchingRule, byEgress.Denial!.Reason);
            await using (var targetLog = await LineageLogs.OpenPostgresAsync(target.Database))
            await using (var originLog = await LineageLogs.OpenPostgresAsync(origin.Database))
            {
                Assert.False(DecisionRecord.Parse((await targetLog.GetByKeyAsync(DecisionRecord.DecisionKey(byTarget.Denial.IntentId), bound.Token))!.Data).Allowed);
                Assert.Null(await targetLog.GetByKeyAsync(DecisionRecord.DecisionKey(byEgress.Denial.IntentId), bound.Token));
                Assert.False(DecisionRecord.Parse((await originLog.GetByKeyAsync(DecisionRecord.DecisionKey(byEgress.Denial.IntentId), bound.Token))!.Data).Allowed);
            }
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }

        // Both lineages hold the halt, and each verifies.
        foreach (var side in new[] { origin, target })
        {
            await using var log = await LineageLogs.OpenPostgresAsync(side.Database);
            await EventuallyAsync($"the halt in {side.Domain}'s lineage", async () => await log.GetByKeyAsync($"halted:{haltedIntent:D}", bound.Token) is not null, bound.Token);
            var report = await LineageAudit.RunAsync(log, cancellationToken: bound.Token);
            Assert.True(report.Ok, $"{side.Domain}: {string.Join("; ", report.Findings.Select(f => f.Message))}");
        }

        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: checked");
    }

    private static string Sign(Side side, string keyDirectory, string file, DateTimeOffset now, string bundle)
    {
        var path = Path.Combine(side.Run.DataDirectory, file);
        File.WriteAllText(path, PolicyBundleSigning.Sign(bundle, DomainKeys.Load(keyDirectory, KeyUsage.Grant).Signer(KeyUsage.Grant, now)));
        return path;
    }

    /// <summary>The lifecycle state of an intent in a domain's Enforce saga store, or null when it has none.</summary>
    private static async Task<string?> StateAsync(Side side, Guid intentId)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(side.Database) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT data->>'currentState' FROM saga_state WHERE correlation_id::text = $1", connection);
        command.Parameters.AddWithValue(intentId.ToString("D"));
        try
        {
            return await command.ExecuteScalarAsync() as string;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return null;
        }
    }

    private async Task EventuallyAsync(string what, Func<Task<bool>> condition, CancellationToken bound)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out after {StepTimeout.TotalSeconds:0} s waiting for {what}\n{string.Join("\n", _sides.Values.Select(s => s.Run.Output))}");
            await Task.Delay(200, bound);
        }
    }

    private async Task DeleteStreamsAsync()
    {
        await using var admin = await nats.ConnectAsync();
        var js = admin.CreateJetStreamContext();
        foreach (var domain in new[] { O, T })
        {
            try
            {
                await js.DeleteStreamAsync(Subjects.Stream(domain));
            }
            catch (NatsJSApiException)
            {
                // not there
            }
        }
    }
}
