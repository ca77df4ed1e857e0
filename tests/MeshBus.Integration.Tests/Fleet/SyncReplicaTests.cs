using System.Diagnostics;
using MassTransit;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Integration.Tests.Processes;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Fleet;

/// <summary>
/// Issue 16: three Sync replicas of one domain (RabbitMQ, PostgreSQL), started one after the other; any one of them
/// stopped, the domain keeps granting for three heartbeat bounds, judged on the heartbeats of the two left. Before the
/// fix, stopping the newest replica denied every intent <c>SyncStale</c> once its last heartbeat aged past the bound.
/// </summary>
[Collection("rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class SyncReplicaTests(RabbitMqFixture rabbit, PostgresFixture postgres, ITestOutputHelper output) : IAsyncLifetime
{
    private const int HeartbeatBoundSeconds = 5;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    private readonly WorkerRun _run = new(rabbit.AmqpUri, "syncreplica", output);
    private string _database = "";

    public async Task InitializeAsync() => _database = await postgres.CreateDatabaseAsync("syncreplica");

    public async Task DisposeAsync()
    {
        try
        {
            await _run.DisposeAsync();
        }
        finally
        {
            if (_database.Length > 0)
            {
                await postgres.DropDatabaseAsync(_database);
            }
        }
    }

    [Theory(Timeout = 300_000)]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public async Task The_domain_keeps_granting_when_one_of_three_Sync_replicas_stops(int stopped)
    {
        var clock = Stopwatch.StartNew();
        var now = DateTimeOffset.UtcNow;
        var keyDir = Path.Combine(_run.DataDirectory, "keys");
        var keys = DomainKeys.Load(DomainAdministration.Initialize(keyDir, _run.Domain, now).DirectoryPath, KeyUsage.Credential);
        var policyFile = _run.WritePolicy(keyDir, now);
        var settings = new Dictionary<string, string>
        {
            ["Storage__Provider"] = "Postgres",
            ["Storage__ConnectionString"] = _database,
            ["Authorize__HeartbeatBoundSeconds"] = HeartbeatBoundSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Authorize__LineageTimeoutMs"] = "15000",
        };

        // One after the other: each replica's own start differs, so "the newest" is a real one.
        var syncs = new List<WorkerProcess>();
        for (var i = 0; i < 3; i++)
        {
            var sync = _run.Start("sync", keyDir, policyFile, settings, $"sync-{(char)('a' + i)}");
            await sync.WaitReadyAsync(ReadyTimeout);
            syncs.Add(sync);
        }

        var authorize = _run.Start("authorize", keyDir, policyFile, settings, "authorize");
        await authorize.WaitReadyAsync(ReadyTimeout);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: three Sync replicas and Authorize ready");

        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((_, cfg) => _run.ConfigureHost(cfg)));
        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync(new CancellationTokenSource(StepTimeout).Token);
        try
        {
            await using var agent = await ConnectAgentAsync(bus, keys, now);
            var deadline = clock.Elapsed + StepTimeout;
            while (!await GrantedAsync(agent))
            {
                Assert.True(clock.Elapsed < deadline, $"no grant within {StepTimeout.TotalSeconds:0} s\n{_run.Output}");
                await Task.Delay(300);
            }

            var exit = await syncs[stopped].StopAsync(output);
            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: stopped {syncs[stopped].Name} (exit {exit})");

            // Three heartbeat bounds after the stop, every intent is still granted: the remaining replicas' heartbeats count.
            var until = clock.Elapsed + TimeSpan.FromSeconds(3 * HeartbeatBoundSeconds);
            var granted = 0;
            while (clock.Elapsed < until)
            {
                var outcome = await agent.SubmitIntentAsync(Deploy());
                Assert.True(outcome.Lease is not null, $"denied {clock.Elapsed.TotalSeconds:0.0} s into the run, after {granted} grants since the stop: {outcome.Denial?.Reason} {outcome.Denial?.Detail}\n{_run.Output}");
                granted++;
                await outcome.Lease.DisposeAsync();
            }

            output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {granted} intents granted in {3 * HeartbeatBoundSeconds} s after the stop");
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }
    }

    private static IntentRequest Deploy() => new("deploy", "k8s://cluster-a/ns/web") { MaxDuration = TimeSpan.FromMinutes(5) };

    private static async Task<bool> GrantedAsync(MeshBusAgent agent)
    {
        var outcome = await agent.SubmitIntentAsync(Deploy());
        if (outcome.Lease is null)
        {
            return false;
        }

        await outcome.Lease.DisposeAsync();
        return true;
    }

    private async Task<MeshBusAgent> ConnectAgentAsync(IBus bus, DomainKeys keys, DateTimeOffset now)
    {
        var privateKey = Ed25519Keys.NewPrivateKey();
        var subject = _run.Domain + "/agents/deployer";
        _run.RemoveAtEnd(AgentQueue.Name(subject));
        var credential = Credentials.Issue(
            new CredentialClaims(_run.Domain, subject, "c-sync", Base64Url.Encode(Ed25519Keys.PublicKeyOf(privateKey)),
                new AgentAttributes("sha256:sync", "test", "team-web", ["deployers"]), now, now, now.AddHours(1)),
            keys.Signer(KeyUsage.Credential, now));
        return await MeshBusAgent.ConnectAsync(bus, new MeshBusAgentOptions
        {
            Subject = subject,
            HomeDomain = _run.Domain,
            PrivateKey = privateKey,
            Credential = credential,
            KeyResolver = keys.LoadTrust(),
            DecisionTimeout = StepTimeout,
            EntityPrefix = _run.Prefix,
        }, new CancellationTokenSource(StepTimeout).Token);
    }
}
