using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using MassTransit;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Integration.Tests.Processes;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Fleet;

/// <summary>
/// Issue 16's fleet test: two replicas of each worker (Authorize, Enforce, Lineage, Sync), each its own process, on
/// RabbitMQ and one PostgreSQL database. Under a stream of intents whose agents (the SDK) start, heartbeat and complete,
/// or are denied by policy, one replica of each worker is stopped with SIGTERM (and a replacement started), then,
/// once the replacements are ready, the other replica of each is killed with SIGKILL, one at a time, each only after
/// the stream has moved on from the previous one.
/// <para>
/// Afterwards: every execution's saga is in the terminal state its agent caused (Completed for a completed lease,
/// Denied for a denial), no agent is quarantined, every intent has exactly one recorded decision and every answer an
/// agent queue delivered for it is that decision, and the lineage log verifies. What a broken fleet shows here: a
/// report lost to a stopped Enforce leaves a saga Halting and its agent quarantined; a decision taken twice by two
/// Authorize replicas shows as two answers or two records; a Sync replica whose heartbeats others ignore makes the
/// domain deny <c>SyncStale</c> once the replica that counted is gone.
/// </para>
/// </summary>
[Collection("rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class FleetReplicaTests(RabbitMqFixture rabbit, PostgresFixture postgres, ITestOutputHelper output) : IAsyncLifetime
{
    private const int Agents = 4;
    private const int CyclesPerStep = 4;
    private const int MaxIntents = 400;
    private const string Resource = "k8s://cluster-a/ns/web";
    private static readonly string[] WorkerNames = ["authorize", "enforce", "lineage", "sync"];
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);
    /// <summary>compose's <c>stop_grace_period</c> (above the hosts' 30 s shutdown bound): a stop under load may take that long.</summary>
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(40);
    private static readonly TimeSpan Pace = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(45);
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(120);

    private readonly WorkerRun _run = new(rabbit.AmqpUri, "fleet", output);
    private string _database = "";

    public async Task InitializeAsync() => _database = await postgres.CreateDatabaseAsync("fleet");

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

    [Fact(Timeout = 420_000)]
    public async Task Replicas_of_every_worker_stopped_and_killed_one_at_a_time_lose_no_execution_and_quarantine_no_agent()
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
            // The lineage bound is a latency promise; on this loaded machine a kill can stall a write past 2 s, and the
            // documented LineageUnavailable denial would be taken for a wrong answer. Every intent must be decided.
            ["Authorize__LineageTimeoutMs"] = "15000",
            // Checkpoints often enough that the run's log holds some (docs/lineage.md: the Lineage worker publishes them).
            ["Lineage__CheckpointInterval"] = "00:00:05",
        };

        // The server is shared with other runs: pools of two (the default is three) leave room for the replacements,
        // except in Enforce, whose sagas and schedules share its one pool (at two they queue for it under this stream).
        IReadOnlyDictionary<string, string> For(string worker) => worker == "enforce"
            ? settings
            : new Dictionary<string, string>(settings) { ["Storage__PoolSize"] = "2" };

        var replicas = new Dictionary<string, List<WorkerProcess>>();
        foreach (var worker in WorkerNames)
        {
            replicas[worker] = [_run.Start(worker, keyDir, policyFile, For(worker), $"{worker}-a"), _run.Start(worker, keyDir, policyFile, For(worker), $"{worker}-b")];
        }

        await Task.WhenAll(_run.Workers.Select(w => w.WaitReadyAsync(ReadyTimeout)));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {_run.Workers.Count} processes ready");

        var services = new ServiceCollection();
        services.AddMassTransit(x => x.UsingRabbitMq((_, cfg) => _run.ConfigureHost(cfg)));
        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync(new CancellationTokenSource(StepTimeout).Token);

        // Every answer any agent queue delivers, duplicates included (the SDK acts on the first and drops the rest).
        var answers = new AnswerObserver();
        using var observed = bus.ConnectConsumeObserver(answers);
        var stream = new Stream();
        try
        {
            var agents = new List<MeshBusAgent>();
            for (var i = 0; i < Agents; i++)
            {
                agents.Add(await ConnectAgentAsync(bus, keys, now, $"agent-{i}"));
            }

            try
            {
                // Governance must be fresh on both Authorize replicas' view (policy applied, a heartbeat seen).
                var deadline = clock.Elapsed + StepTimeout;
                while (true)
                {
                    var probe = await agents[0].SubmitIntentAsync(Deploy());
                    if (probe.Lease is { } lease)
                    {
                        stream.Expect(lease.IntentId, "Completed");
                        await lease.StartAsync();
                        await lease.CompleteAsync("probe");
                        break;
                    }

                    // A probe denied before governance is fresh may be unrecorded (SyncStale): not part of the stream.
                    Assert.True(clock.Elapsed < deadline, $"no grant within {StepTimeout.TotalSeconds:0} s: {probe.Denial?.Reason} {probe.Denial?.Detail}\n{_run.Output}");
                    await Task.Delay(300);
                }

                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: governance fresh; the stream starts");
                using var streamBound = new CancellationTokenSource(TimeSpan.FromSeconds(240));
                var running = agents.Select((agent, i) => RunAgentAsync(agent, i, stream, streamBound.Token)).ToList();

                // One disruption at a time, each after the stream has gone on from the last one.
                var replacements = new List<WorkerProcess>();
                foreach (var worker in WorkerNames)
                {
                    var stopped = replicas[worker][0];
                    var since = clock.Elapsed;
                    var stopping = stopped.StopAsync(output, StopGrace);
                    replacements.Add(_run.Start(worker, keyDir, policyFile, For(worker), $"{worker}-c"));
                    var code = await stopping;
                    output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: SIGTERM {stopped.Name}: exit {code?.ToString(CultureInfo.InvariantCulture) ?? "none"} after {(clock.Elapsed - since).TotalSeconds:0.0} s");
                    Assert.True(code is not null, $"{stopped.Name} did not exit within {StopGrace.TotalSeconds:0} s of SIGTERM\n{stopped.Output}");
                    await stream.WaitForProgressAsync(CyclesPerStep, StepTimeout, () => $"after SIGTERM {stopped.Name}\n{_run.Output}");
                }

                await Task.WhenAll(replacements.Select(w => w.WaitReadyAsync(ReadyTimeout)));
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: replacements ready ({stream.Finished} cycles finished)");
                foreach (var worker in WorkerNames)
                {
                    var victim = replicas[worker][1];
                    await victim.KillAsync();
                    output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: SIGKILL {victim.Name}");
                    await stream.WaitForProgressAsync(CyclesPerStep, StepTimeout, () => $"after SIGKILL {victim.Name}\n{_run.Output}");
                }

                stream.Stop();
                await Task.WhenAll(running).WaitAsync(StepTimeout);
                output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: stream ended: {stream.Finished} agent cycles, {stream.Expected.Count} intents");
            }
            finally
            {
                stream.Stop();
                foreach (var agent in agents)
                {
                    await agent.DisposeAsync();
                }
            }
        }
        finally
        {
            await bus.StopAsync(CancellationToken.None);
        }

        Assert.True(stream.Failures.IsEmpty, $"{stream.Failures.Count} agent cycles failed, e.g.:\n{string.Join("\n", stream.Failures.Take(5))}\n{_run.Output}");

        // Every saga reaches the state its agent caused (the last reports may still be on their way, a report that came
        // before its grant was recorded through its redeliveries: about 80 s at most before the error queue).
        var expected = stream.Expected.ToDictionary(p => p.Key, p => p.Value);
        Dictionary<Guid, string> states = [];
        var settle = clock.Elapsed + SettleTimeout;
        while (true)
        {
            states = await SagaStatesAsync();
            if (expected.All(p => states.GetValueOrDefault(p.Key) == p.Value) || clock.Elapsed > settle)
            {
                break;
            }

            await Task.Delay(500);
        }

        var wrong = expected.Where(p => states.GetValueOrDefault(p.Key) != p.Value)
            .Select(p => $"{p.Key}: expected {p.Value}, saga {states.GetValueOrDefault(p.Key) ?? "missing"}").ToList();
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: sagas {string.Join(", ", states.Values.GroupBy(s => s).Select(g => $"{g.Key} {g.Count()}"))}");
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {expected.Count} executions not in the state their agent caused:\n{string.Join("\n", wrong.Take(10))}\n{await QueuesAsync()}\n{_run.Output}");

        Assert.Equal(0L, await ScalarAsync("SELECT count(*) FROM authorize_quarantine WHERE quarantined"));

        // One decision per intent, and every answer delivered for it is that decision.
        var problems = new List<string>();
        await using (var log = await LineageLogs.OpenPostgresAsync(_database))
        {
            foreach (var (intentId, state) in expected)
            {
                var stored = await log.GetByKeyAsync(DecisionRecord.DecisionKey(intentId));
                if (stored is null)
                {
                    problems.Add($"{intentId}: no decision recorded");
                    continue;
                }

                var decision = DecisionRecord.Parse(stored.Data);
                if (decision.Allowed != (state == "Completed"))
                {
                    problems.Add($"{intentId}: recorded allowed={decision.Allowed}, the agent's outcome was {state}");
                }

                var delivered = answers.For(intentId);
                if (delivered.Count == 0)
                {
                    problems.Add($"{intentId}: no answer observed on the agent queue");
                }

                foreach (var answer in delivered)
                {
                    if (answer.Allowed != decision.Allowed || answer.LineageIndex != stored.Index)
                    {
                        problems.Add($"{intentId}: answered allowed={answer.Allowed} at lineage index {answer.LineageIndex}, recorded allowed={decision.Allowed} at {stored.Index}");
                    }
                }
            }

            var report = await LineageAudit.RunAsync(log);
            output.WriteLine($"lineage: {report.Entries} entries, {report.Checkpoints} checkpoints; {answers.Duplicates} duplicate answers observed");
            Assert.True(report.Checkpoints > 0, "the Lineage replicas published no checkpoint");
            problems.AddRange(report.Findings.Select(f => $"lineage audit: index {f.Index}: {f.Message}"));
            var decisionKeys = new HashSet<string>();
            await foreach (var record in log.ReadEntriesAsync())
            {
                if (record.Key.StartsWith("decision:", StringComparison.Ordinal) && !decisionKeys.Add(record.Key))
                {
                    problems.Add($"lineage index {record.Index}: {record.Key} recorded twice");
                }

                if (record.Key.StartsWith("quarantine", StringComparison.Ordinal))
                {
                    problems.Add($"lineage index {record.Index}: {record.Key}: an agent was quarantined");
                }
            }
        }

        Assert.True(problems.Count == 0, $"{problems.Count} problems:\n{string.Join("\n", problems.Take(20))}\n{_run.Output}");
        Assert.DoesNotContain("SyncStale", string.Join("\n", stream.Denials), StringComparison.Ordinal);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: checked");
    }

    /// <summary>
    /// One agent's loop until the schedule ends (<see cref="MaxIntents"/> is only a safety bound): every fifth intent
    /// a policy-denied delete, the others deploys it starts, heartbeats on and completes after a short piece of work.
    /// </summary>
    private async Task RunAgentAsync(MeshBusAgent agent, int index, Stream stream, CancellationToken cancellationToken)
    {
        var n = index;
        while (stream.Running && stream.Expected.Count < MaxIntents)
        {
            n++;
            try
            {
                var delete = n % 5 == 0;
                var outcome = await agent.SubmitIntentAsync(delete ? new IntentRequest("delete", Resource) : Deploy(), cancellationToken);
                if (outcome.Lease is { } lease)
                {
                    stream.Expect(lease.IntentId, "Completed");
                    if (delete)
                    {
                        stream.Fail($"{lease.IntentId}: a delete was granted");
                    }

                    await lease.StartAsync(cancellationToken);
                    await lease.HeartbeatAsync();
                    await Task.Delay(300, cancellationToken); // the work
                    await lease.HeartbeatAsync();
                    await Task.Delay(300, cancellationToken);
                    if (lease.Token.IsCancellationRequested)
                    {
                        stream.Fail($"{lease.IntentId}: the lease ended during the work: {lease.StopReason} {lease.StopDetail}");
                    }

                    await lease.CompleteAsync("done", cancellationToken);
                }
                else
                {
                    var denial = outcome.Denial!;
                    stream.Expect(denial.IntentId, "Denied");
                    stream.Denials.Enqueue($"{denial.Reason}: {denial.Detail}");
                    if (!delete || denial.Reason != GovernanceReason.PolicyDenied || denial.RejectedByAgent)
                    {
                        stream.Fail($"{denial.IntentId} ({(delete ? "delete" : "deploy")}): denied {denial.Reason} {denial.Detail} (by the agent: {denial.RejectedByAgent})");
                    }
                }

                stream.Finish();
                // Think time between an agent's intents: a modest stream, paced by the agents and not the workers.
                await Task.Delay(Pace, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                stream.Fail("the stream ran past its bound");
                return;
            }
            catch (IntentDecisionTimeoutException e)
            {
                stream.Fail($"no decision: {e.Message}");
            }
        }

        if (stream.Running)
        {
            stream.Fail($"the stream reached its safety bound of {MaxIntents} intents before the schedule ended");
        }
    }

    private static IntentRequest Deploy() => new("deploy", Resource) { MaxDuration = TimeSpan.FromMinutes(5) };

    private async Task<MeshBusAgent> ConnectAgentAsync(IBus bus, DomainKeys keys, DateTimeOffset now, string name)
    {
        var privateKey = Ed25519Keys.NewPrivateKey();
        var subject = _run.Domain + "/agents/" + name;
        _run.RemoveAtEnd(AgentQueue.Name(subject));
        var credential = Credentials.Issue(
            new CredentialClaims(_run.Domain, subject, "c-" + name, Base64Url.Encode(Ed25519Keys.PublicKeyOf(privateKey)),
                new AgentAttributes("sha256:fleet", "test", "team-web", ["deployers"]), now, now, now.AddHours(1)),
            keys.Signer(KeyUsage.Credential, now));
        return await MeshBusAgent.ConnectAsync(bus, new MeshBusAgentOptions
        {
            Subject = subject,
            HomeDomain = _run.Domain,
            PrivateKey = privateKey,
            Credential = credential,
            KeyResolver = keys.LoadTrust(),
            DecisionTimeout = StepTimeout,
            HeartbeatInterval = TimeSpan.FromSeconds(1),
            EntityPrefix = _run.Prefix,
        }, new CancellationTokenSource(StepTimeout).Token);
    }

    private async Task<Dictionary<Guid, string>> SagaStatesAsync()
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_database) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT correlation_id::text, data->>'currentState' FROM saga_state", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var states = new Dictionary<Guid, string>();
        while (await reader.ReadAsync())
        {
            if (Guid.TryParse(reader.GetString(0), out var id) && !reader.IsDBNull(1))
            {
                states[id] = reader.GetString(1);
            }
        }

        return states;
    }

    /// <summary>For a failure message: what still waits in the run's queues and error queues.</summary>
    private async Task<string> QueuesAsync()
    {
        var lines = new List<string>();
        var factory = new RabbitMQ.Client.ConnectionFactory { Uri = rabbit.AmqpUri };
        await using var connection = await factory.CreateConnectionAsync();
        foreach (var queue in WorkerRun.ExplicitQueues.SelectMany(q => new[] { _run.Prefix + q, _run.Prefix + q + "_error" }))
        {
            await using var channel = await connection.CreateChannelAsync();
            try
            {
                var ok = await channel.QueueDeclarePassiveAsync(queue);
                lines.Add($"{queue}: {ok.MessageCount} waiting, {ok.ConsumerCount} consumers");
            }
            catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
            {
                lines.Add($"{queue}: none");
            }
        }

        lines.Add($"scheduled: {await ScalarAsync("SELECT count(*) FROM qrtz_triggers")} triggers");
        return string.Join("\n", lines);
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_database) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>The stream's shared state: what each intent's saga must end as, finished cycles, failures.</summary>
    private sealed class Stream
    {
        private readonly SemaphoreSlim _progress = new(0);
        private int _finished;
        private volatile bool _running = true;

        public ConcurrentDictionary<Guid, string> Expected { get; } = new();

        public ConcurrentQueue<string> Failures { get; } = new();

        public ConcurrentQueue<string> Denials { get; } = new();

        public bool Running => _running;

        public int Finished => Volatile.Read(ref _finished);

        public void Expect(Guid intentId, string state) => Expected[intentId] = state;

        public void Fail(string problem) => Failures.Enqueue(problem);

        public void Stop() => _running = false;

        public void Finish()
        {
            Interlocked.Increment(ref _finished);
            _progress.Release();
        }

        /// <summary>Waits until <paramref name="cycles"/> more agent cycles finished, failing with the context otherwise.</summary>
        public async Task WaitForProgressAsync(int cycles, TimeSpan timeout, Func<string> context)
        {
            // Only cycles finished from now on count: drain what is already signalled.
            while (_progress.CurrentCount > 0)
            {
                await _progress.WaitAsync(0);
            }

            var deadline = DateTime.UtcNow + timeout;
            for (var i = 0; i < cycles; i++)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero || !await _progress.WaitAsync(left))
                {
                    Assert.Fail($"the stream finished {i} of {cycles} agent cycles within {timeout.TotalSeconds:0} s {context()}\nfailures: {string.Join("\n", Failures.Take(5))}");
                }
            }
        }
    }

    /// <summary>One answer as an agent queue delivered it.</summary>
    private sealed record ObservedAnswer(bool Allowed, long? LineageIndex);

    /// <summary>Every grant and denial consumed on the test bus (the agents' queues), per intent.</summary>
    private sealed class AnswerObserver : IConsumeObserver
    {
        private readonly ConcurrentDictionary<Guid, ConcurrentQueue<ObservedAnswer>> _answers = new();
        private int _duplicates;

        public int Duplicates => Volatile.Read(ref _duplicates);

        public IReadOnlyList<ObservedAnswer> For(Guid intentId) => _answers.TryGetValue(intentId, out var q) ? q.ToList() : [];

        public Task PreConsume<T>(ConsumeContext<T> context)
            where T : class
        {
            switch (context.Message)
            {
                case GrantIssued grant:
                    Add(grant.IntentId, new ObservedAnswer(true, grant.LineageIndex));
                    break;
                case GrantDenied denied:
                    Add(denied.IntentId, new ObservedAnswer(false, denied.LineageIndex));
                    break;
            }

            return Task.CompletedTask;
        }

        public Task PostConsume<T>(ConsumeContext<T> context)
            where T : class => Task.CompletedTask;

        public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
            where T : class => Task.CompletedTask;

        private void Add(Guid intentId, ObservedAnswer answer)
        {
            var queue = _answers.GetOrAdd(intentId, _ => new ConcurrentQueue<ObservedAnswer>());
            if (!queue.IsEmpty)
            {
                Interlocked.Increment(ref _duplicates);
            }

            queue.Enqueue(answer);
        }
    }
}
