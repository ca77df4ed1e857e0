using System.Net;
using System.Net.Sockets;
using MassTransit;
using MeshBus.Agent;
using MeshBus.Cli.Commands.Halt;
using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Ledger.Merkle;
using MeshBus.Policy.Bundles;
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
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private readonly List<WorkerProcess> _workers = [];
    private string _data = "";

    private string Domain => $"t{_run}.example/prod";

    private string Prefix => $"t{_run}-";

    public Task InitializeAsync()
    {
        _data = Path.Combine(Path.GetTempPath(), "meshbus-skeleton-" + _run);
        Directory.CreateDirectory(_data);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        // Always: a failed test must not leave workers behind.
        foreach (var worker in _workers)
        {
            await worker.StopAsync(output);
        }

        foreach (var worker in _workers)
        {
            worker.Dispose();
        }

        await CleanBrokerAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException e)
        {
            output.WriteLine($"could not remove {_data}: {e.Message}");
        }
    }

    [Fact]
    public async Task Four_worker_processes_on_RabbitMQ_grant_deny_halt_and_record_a_verifiable_lineage()
    {
        var now = DateTimeOffset.UtcNow;
        var keyDir = Path.Combine(_data, "keys");
        var keys = DomainKeys.Load(DomainAdministration.Initialize(keyDir, Domain, now).DirectoryPath, KeyUsage.Credential);
        var policyFile = WritePolicy(keyDir, now);

        foreach (var name in new[] { "lineage", "enforce", "authorize", "sync" })
        {
            _workers.Add(WorkerProcess.Start(name, WorkerDll(name), Environment(name, keyDir, policyFile, out var port), port));
        }

        await Task.WhenAll(_workers.Select(w => w.WaitReadyAsync(TimeSpan.FromSeconds(60))));

        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((_, cfg) =>
        {
            cfg.MessageTopology.SetEntityNameFormatter(new PrefixEntityNameFormatter(cfg.MessageTopology.EntityNameFormatter, Prefix));
            var uri = rabbit.AmqpUri;
            var userInfo = uri.UserInfo.Split(':');
            cfg.Host(uri.Host, (ushort)uri.Port, VirtualHost(uri), h =>
            {
                h.Username(Uri.UnescapeDataString(userInfo[0]));
                h.Password(Uri.UnescapeDataString(userInfo.ElementAtOrDefault(1) ?? ""));
            });
        }));
        await using var provider = services.BuildServiceProvider();
        var busControl = provider.GetRequiredService<IBusControl>();
        await busControl.StartAsync(new CancellationTokenSource(StepTimeout).Token);
        Lease lease;
        Denial denial;
        try
        {
            var privateKey = Ed25519Keys.NewPrivateKey();
            var subject = Domain + "/agents/deployer";
            var credential = Credentials.Issue(
                new CredentialClaims(Domain, subject, "c-" + _run, Base64Url.Encode(Ed25519Keys.PublicKeyOf(privateKey)),
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
            var enforceDb = Path.Combine(_data, "enforce.db");
            await WaitForAsync("saga Executing", () => SagaStateAsync(enforceDb, lease.IntentId), s => s?.Contains("\"Executing\"", StringComparison.Ordinal) == true);

            await busControl.Publish(HaltCommand.Create(Domain, GovernanceScope.Execution, lease.IntentId.ToString(), "skeleton test: operator halt", DateTimeOffset.UtcNow));
            await WaitForAsync("lease token cancelled", () => Task.FromResult(lease.Token.IsCancellationRequested), c => c);
            await WaitForAsync("saga Halted", () => SagaStateAsync(enforceDb, lease.IntentId), s => s?.Contains("\"Halted\"", StringComparison.Ordinal) == true);

            var lineageDb = Path.Combine(_data, "lineage.db");
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
        foreach (var worker in _workers)
        {
            var code = await worker.StopAsync(output);
            Assert.True(code is not null, $"{worker.Name} did not exit within 20 s of SIGTERM");
        }

        await using var log = LineageLogs.OpenSqlite(Path.Combine(_data, "lineage.db"));
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
        foreach (var queue in ExplicitQueues)
        {
            await using var channel = await connection.CreateChannelAsync();
            await channel.QueueDeclarePassiveAsync(Prefix + queue);
        }
    }

    private static readonly string[] ExplicitQueues = ["authorize-intents", "intent-lifecycle", "lineage-recorder", "meshbus-scheduler"];

    /// <summary>Best effort: removes this run's prefixed queues and exchanges from the shared broker.</summary>
    private async Task CleanBrokerAsync()
    {
        try
        {
            var factory = new RabbitMQ.Client.ConnectionFactory { Uri = rabbit.AmqpUri };
            await using var connection = await factory.CreateConnectionAsync();
            await using var channel = await connection.CreateChannelAsync();
            var formatter = new MeshBus.Hosting.MeshBusEndpointNameFormatter(Prefix);
            var names = new List<string>(ExplicitQueues.Select(q => Prefix + q));
            names.AddRange(new[] { "authorize-renewals", "authorize-endorsements", "authorize-quarantine" }.Select(q => Prefix + q));
            var consumerName = typeof(IEndpointNameFormatter).GetMethod(nameof(IEndpointNameFormatter.Consumer))!;
            foreach (var type in new[] { typeof(MeshBus.Workers.Sync.SyncWorker), typeof(MeshBus.Workers.Authorize.AuthorizeWorker), typeof(MeshBus.Workers.Enforce.EnforceWorker), typeof(MeshBus.Workers.Lineage.LineageWorker) }
                .SelectMany(t => t.Assembly.GetTypes())
                .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericTypeDefinition: false } && typeof(IConsumer).IsAssignableFrom(t)))
            {
                names.Add((string)consumerName.MakeGenericMethod(type).Invoke(formatter, null)!);
            }

            foreach (var name in names.Distinct())
            {
                foreach (var queue in new[] { name, name + "_error", name + "_skipped" })
                {
                    await channel.QueueDeleteAsync(queue, false, false);
                    await channel.ExchangeDeleteAsync(queue, false);
                }
            }

            foreach (var type in typeof(IntentSubmitted).Assembly.GetTypes().Where(t => t is { IsClass: true, IsPublic: true, Namespace: not null }))
            {
                await channel.ExchangeDeleteAsync($"{Prefix}{type.Namespace}:{type.Name}", false);
            }
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.RabbitMQClientException or System.Reflection.ReflectionTypeLoadException or IOException)
        {
            output.WriteLine("broker clean-up incomplete: " + e.Message);
        }
    }

    private Dictionary<string, string> Environment(string worker, string keyDir, string policyFile, out int port)
    {
        port = FreePort();
        var uri = rabbit.AmqpUri;
        var userInfo = uri.UserInfo.Split(':');
        return new Dictionary<string, string>
        {
            ["MeshBus__Domain"] = Domain,
            ["MeshBus__Transport"] = "RabbitMq",
            ["MeshBus__DataDirectory"] = _data,
            ["MeshBus__KeyDirectory"] = keyDir,
            ["RabbitMqTransport__Host"] = uri.Host,
            ["RabbitMqTransport__Port"] = uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RabbitMqTransport__VirtualHost"] = VirtualHost(uri),
            ["RabbitMqTransport__Username"] = Uri.UnescapeDataString(userInfo[0]),
            ["RabbitMqTransport__Password"] = Uri.UnescapeDataString(userInfo.ElementAtOrDefault(1) ?? ""),
            ["RabbitMqTransport__EntityPrefix"] = Prefix,
            ["Sync__PolicyBundleFile"] = policyFile,
            ["Sync__HeartbeatInterval"] = "00:00:01",
            ["Authorize__PolicyBundleFile"] = policyFile,
            ["Health__Urls"] = $"http://127.0.0.1:{port}",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Logging__LogLevel__Default"] = "Warning",
            ["WORKER"] = worker,
        };
    }

    private static string VirtualHost(Uri uri)
    {
        var path = uri.AbsolutePath.TrimStart('/');
        return path.Length == 0 ? "/" : Uri.UnescapeDataString(path);
    }

    private static string WorkerDll(string name)
    {
        // bin/<Configuration>/net10.0 of this assembly -> the same of Workers/<Name>.
        var testBin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testBin.Parent!.Name;
        var repo = testBin.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        var folder = char.ToUpperInvariant(name[0]) + name[1..];
        var dll = Path.Combine(repo, "Workers", folder, "bin", configuration, testBin.Name, $"meshbus-{name}.dll");
        Assert.True(File.Exists(dll), $"worker executable not built: {dll}");
        return dll;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private string WritePolicy(string keyDir, DateTimeOffset now)
    {
        var bundle = $$"""
            {
              "format": "meshbus-policy/v1",
              "scope": "domain",
              "domain": "{{Domain}}",
              "epoch": 1,
              "description": "Skeleton test policy.",
              "rules": [
                {
                  "id": "allow-deploy-web",
                  "effect": "allow",
                  "match": { "actions": ["deploy"], "resources": ["k8s://cluster-a/ns/**"] },
                  "condition": "'deployers' in agent.claims.groups && intent.maxDurationSeconds <= 1800",
                  "obligations": { "maxLeaseSeconds": 120 }
                },
                {
                  "id": "deny-delete",
                  "effect": "deny",
                  "match": { "actions": ["delete"], "resources": ["**"] }
                }
              ]
            }
            """;
        var signer = DomainKeys.Load(keyDir, KeyUsage.Grant).Signer(KeyUsage.Grant, now);
        var path = Path.Combine(_data, "policy.json");
        File.WriteAllText(path, PolicyBundleSigning.Sign(bundle, signer));
        return path;
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
