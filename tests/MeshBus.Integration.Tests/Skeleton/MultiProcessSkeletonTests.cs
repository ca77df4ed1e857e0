using MassTransit;
using MeshBus.Agent;
using MeshBus.Cli.Commands.Halt;
using MeshBus.Contracts;
using MeshBus.Integration.Tests.Processes;
using MeshBus.Ledger;
using MeshBus.Ledger.Merkle;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Skeleton;

/// <summary>
/// Issue 3's walking skeleton across processes: Sync, Authorize, Enforce and Lineage run as their own executables on
/// the shared RabbitMQ, isolated from every other test by a per-run entity prefix and domain; an agent in the test
/// process is granted, denied and halted, and the shared lineage store verifies afterwards.
/// </summary>
[Collection("rabbitmq")]
[Trait("Category", "Integration")]
public sealed class MultiProcessSkeletonTests(RabbitMqFixture rabbit, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(20);
    private readonly WorkerRun _run = new(rabbit.AmqpUri, "skeleton", output);

    private string Domain => _run.Domain;

    private string Prefix => _run.Prefix;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _run.DisposeAsync();

    [Fact]
    public async Task Four_worker_processes_on_RabbitMQ_grant_deny_halt_and_record_a_verifiable_lineage()
    {
        var now = DateTimeOffset.UtcNow;
        var keyDir = Path.Combine(_run.DataDirectory, "keys");
        var keys = DomainKeys.Load(DomainAdministration.Initialize(keyDir, Domain, now).DirectoryPath, KeyUsage.Credential);
        var policyFile = _run.WritePolicy(keyDir, now);

        foreach (var name in new[] { "lineage", "enforce", "authorize", "sync" })
        {
            _run.Start(name, keyDir, policyFile);
        }

        await Task.WhenAll(_run.Workers.Select(w => w.WaitReadyAsync(TimeSpan.FromSeconds(60))));

        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((_, cfg) => _run.ConfigureHost(cfg)));
        await using var provider = services.BuildServiceProvider();
        var busControl = provider.GetRequiredService<IBusControl>();
        await busControl.StartAsync(new CancellationTokenSource(StepTimeout).Token);
        Lease lease;
        Denial denial;
        try
        {
            var privateKey = Ed25519Keys.NewPrivateKey();
            var subject = Domain + "/agents/deployer";
            _run.RemoveAtEnd(AgentQueue.Name(subject));
            var credential = Credentials.Issue(
                new CredentialClaims(Domain, subject, "c-" + _run.Id, Base64Url.Encode(Ed25519Keys.PublicKeyOf(privateKey)),
                    new AgentAttributes("sha256:skeleton", "skeleton", "team-web", ["deployers"]), now, now, now.AddHours(1)),
                keys.Signer(KeyUsage.Credential, now));
            await using var agent = await MeshBusAgent.ConnectAsync(busControl, new MeshBusAgentOptions
            {
                Subject = subject,
                HomeDomain = Domain,
                PrivateKey = privateKey,
                Credential = credential,
                KeyResolver = keys.LoadTrust(),
                DecisionTimeout = StepTimeout,
                EntityPrefix = Prefix,
            }, CancellationToken.None);

            // Sync distributes the policy and heartbeats: until Authorize has both, it fails closed. Retry briefly.
            var allowed = await SubmitUntilDecidedAsync(agent, new IntentRequest("deploy", "k8s://cluster-a/ns/web") { MaxDuration = TimeSpan.FromMinutes(5) });
            Assert.True(allowed.Lease is not null, $"expected a verified grant, got {allowed.Denial?.Reason}: {allowed.Denial?.Detail}");
            lease = allowed.Lease;
            Assert.False(string.IsNullOrEmpty(lease.Claims.GrantId));

            var denied = await agent.SubmitIntentAsync(new IntentRequest("delete", "k8s://cluster-a/ns/web"));
            Assert.True(denied.Denial is { RejectedByAgent: false }, "expected a denial from Authorize");
            denial = denied.Denial;
            Assert.Equal(GovernanceReason.PolicyDenied, denial.Reason);

            await lease.StartAsync();
            await lease.HeartbeatAsync();
            var enforceDb = Path.Combine(_run.DataDirectory, "enforce.db");
            await WaitForAsync("saga Executing", () => SagaStateAsync(enforceDb, lease.IntentId), s => s?.Contains("\"Executing\"", StringComparison.Ordinal) == true);

            await busControl.Publish(HaltCommand.Create(Domain, GovernanceScope.Execution, lease.IntentId.ToString(), "skeleton test: operator halt", DateTimeOffset.UtcNow));
            await WaitForAsync("lease token cancelled", () => Task.FromResult(lease.Token.IsCancellationRequested), c => c);
            await WaitForAsync("saga Halted", () => SagaStateAsync(enforceDb, lease.IntentId), s => s?.Contains("\"Halted\"", StringComparison.Ordinal) == true);

            var lineageDb = Path.Combine(_run.DataDirectory, "lineage.db");
            await WaitForAsync("halt in lineage", async () =>
            {
                await using var probe = LineageLogs.OpenSqlite(lineageDb);
                return await probe.GetByKeyAsync($"halted:{lease.IntentId:D}");
            }, r => r is not null);
        }
        finally
        {
            await busControl.StopAsync(CancellationToken.None);
        }

        // Graceful stop: SIGTERM, every process exits.
        foreach (var worker in _run.Workers)
        {
            var code = await worker.StopAsync(output);
            Assert.True(code is not null, $"{worker.Name} did not exit within 20 s of SIGTERM");
        }

        await using var log = LineageLogs.OpenSqlite(Path.Combine(_run.DataDirectory, "lineage.db"));
        var grantDecision = await log.GetByKeyAsync("decision:" + lease.IntentId.ToString("D"));
        Assert.True(grantDecision is not null, "the grant's decision is not in lineage");
        Assert.Equal(lease.Claims.LineageIndex, grantDecision.Index);
        Assert.True(await log.GetByKeyAsync("decision:" + denial.IntentId.ToString("D")) is not null, "the denial's decision is not in lineage");
        Assert.True(await log.GetByKeyAsync($"halted:{lease.IntentId:D}") is not null, "the halt is not in lineage");

        var head = await log.GetTreeHeadAsync();
        var leaves = new List<byte[]>();
        for (var i = 0L; i < head.Size; i++)
        {
            leaves.Add((await log.GetAsync(i))!.Data);
        }

        Assert.True(MerkleTree.RootOf(leaves).AsSpan().SequenceEqual(head.RootHash), "recomputed lineage root differs from the stored tree head");

        // The workers' queues carry this run's prefix (RabbitMqTransport:EntityPrefix): nothing landed on the shared names.
        var factory = new RabbitMQ.Client.ConnectionFactory { Uri = rabbit.AmqpUri };
        await using var connection = await factory.CreateConnectionAsync();
        foreach (var queue in WorkerRun.ExplicitQueues)
        {
            await using var channel = await connection.CreateChannelAsync();
            await channel.QueueDeclarePassiveAsync(Prefix + queue);
        }
    }

    private static async Task<IntentOutcome> SubmitUntilDecidedAsync(MeshBusAgent agent, IntentRequest request)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        while (true)
        {
            var outcome = await agent.SubmitIntentAsync(request);
            if (outcome.Lease is not null || DateTime.UtcNow > deadline)
            {
                return outcome;
            }

            await Task.Delay(250);
        }
    }

    private static async Task<string?> SagaStateAsync(string enforceDb, Guid intentId)
    {
        if (!File.Exists(enforceDb))
        {
            return null;
        }

        await using var connection = new SqliteConnection($"Data Source={enforceDb};Mode=ReadOnly");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT data FROM saga_state WHERE lower(correlation_id) = lower($id)";
        command.Parameters.AddWithValue("$id", intentId.ToString("D"));
        try
        {
            return await command.ExecuteScalarAsync() as string;
        }
        catch (SqliteException)
        {
            return null; // schema not created yet, or busy
        }
    }

    private static async Task WaitForAsync<T>(string what, Func<Task<T>> probe, Func<T, bool> done)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (done(await probe()))
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"timed out after {StepTimeout.TotalSeconds:0} s waiting for: {what}");
    }
}
