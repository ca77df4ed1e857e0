using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.TestSupport;
using MeshBus.Trust;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Boundary;

/// <summary>
/// Issue 14's boundary on a real broker with restricted users: agents publish only to the agent ingress, and nothing
/// they put there is trusted unless it is an agent type, within the limits, and (for reports) signed by the agent the
/// execution was granted to. Every agent here is RabbitMQ.Client with hand-built envelopes, as docs/wire-format.md says.
/// </summary>
[Collection("rabbitmq")]
[Trait("Category", "Integration")]
public sealed class AgentBoundaryTests(RabbitMqFixture rabbit, ITestOutputHelper output)
{
    private static readonly Type[] ContractTypes = typeof(IntentSubmitted).Assembly.GetTypes()
        .Where(t => t is { IsPublic: true, IsClass: true, IsAbstract: false, Namespace: "MeshBus.Contracts" })
        .OrderBy(t => t.Name, StringComparer.Ordinal)
        .ToArray();

    /// <summary>A victim agent with a running execution: granted, started (signed), its saga Executing.</summary>
    private static async Task<(RawAgent Agent, IntentSubmitted Intent, GrantIssued Grant)> RunningExecutionAsync(BoundaryMesh mesh, string name = "victim")
    {
        var agent = await mesh.AgentAsync(name);
        // Sync applies the policy and heartbeats within a second or two; until then Authorize fails closed. Retry.
        for (var attempt = 0; ; attempt++)
        {
            var intent = agent.Intent();
            await agent.SendAsync(intent);
            var answer = await agent.AnswerAsync(intent.IntentId);
            if (answer is GrantIssued grant)
            {
                var claims = JwsClaims(grant.Grant);
                await agent.SendAsync(ExecutionReportSignature.Sign(new ExecutionStarted(intent.IntentId, agent.Domain, agent.Subject, claims.GetProperty("jti").GetString()!, DateTimeOffset.UtcNow), agent.PrivateKey));
                await mesh.SagaInStateAsync(intent.IntentId, "Executing");
                return (agent, intent, grant);
            }

            Assert.True(attempt < 20, "no grant: " + ((GrantDenied)answer).Detail);
            await Task.Delay(500);
        }
    }

    private static JsonElement JwsClaims(string jws) =>
        JsonDocument.Parse(Trust.Crypto.Base64Url.Decode(jws.Split('.')[1])).RootElement.Clone();

    [Fact(Timeout = 300_000)]
    public async Task Every_contract_type_an_agent_user_publishes_is_refused_by_the_broker_or_rejected_at_the_ingress_and_changes_nothing()
    {
        await using var mesh = await BoundaryMesh.StartAsync(rabbit, output);
        var (victim, intent, _) = await RunningExecutionAsync(mesh);
        var attacker = await mesh.AgentAsync("attacker");
        var before = await mesh.SagaAsync(intent.IntentId);
        var lineageBefore = (await mesh.Lineage.FindAsync(intent.IntentId.ToString("D"))).Select(r => r.Key).ToList();
        Assert.True(ContractTypes.Length >= 25, $"only {ContractTypes.Length} contract types found");

        var ingressIds = new Dictionary<string, string>();
        var refusals = new Dictionary<string, int>();
        foreach (var type in ContractTypes)
        {
            var body = Sample(type, victim, intent.IntentId, mesh.Run.Domain);
            // The exchanges workers use among themselves: the broker refuses the agent's user.
            var internalExchange = $"{mesh.Run.Prefix}MeshBus.Contracts:{type.Name}";
            refusals[type.Name] = await attacker.TryAsync(c => c.BasicPublishAsync(internalExchange, "", mandatory: false, new RabbitMQ.Client.BasicProperties(), RawAgent.Envelope(body, RawAgent.Urn(type))).AsTask());
            // The two exchanges it may write: whatever it claims, the ingress rejects it (to its error queue, with the reason).
            foreach (var exchange in new[] { attacker.IntentsExchange, attacker.ReportsExchange })
            {
                var id = Guid.NewGuid().ToString();
                await attacker.PublishAsync(exchange, RawAgent.Envelope(body, RawAgent.Urn(type), id), id);
                if (type == typeof(IntentSubmitted) && exchange == attacker.IntentsExchange)
                {
                    // The one agent type on its own ingress: an intent (here with the victim's credential copied, and no
                    // valid signature) is decided, not dropped: denied SignatureInvalid, unrecorded, below.
                    continue;
                }

                ingressIds[id] = $"{type.Name} on {exchange}";
            }
        }

        Assert.All(refusals, r => Assert.True(r.Value is 403 or 404, $"{r.Key} on its worker exchange: reply {r.Value}, not refused"));
        Assert.Contains(403, refusals.Values);
        var errors = await mesh.ErrorsAsync(ingressIds.Keys, i => ingressIds[i], "authorize-intents_error", "enforce-reports_error");
        foreach (var (messageId, what) in ingressIds)
        {
            output.WriteLine($"{what}: {errors[messageId]}");
            Assert.EndsWith("retries 0, redeliveries 0]", errors[messageId], StringComparison.Ordinal);
        }


        // The copied-credential intent: the credential's subject hears an unrecorded denial (no lineage index), on
        // which its SDK never ends a running lease; nothing else happened.
        var copied = await victim.ReceiveAsync<GrantDenied>(d => d.IntentId == intent.IntentId);
        Assert.Equal(GovernanceReason.SignatureInvalid, copied.Reason);
        Assert.Null(copied.LineageIndex);

        // A positive signal first: the victim's next genuine report is taken, so the mesh had its chance with all of the above.
        await victim.SendAsync(ExecutionReportSignature.Sign(new ExecutionHeartbeat(intent.IntentId, victim.Domain, victim.Subject, 1, DateTimeOffset.UtcNow), victim.PrivateKey));
        await BoundaryMesh.EventuallyAsync(async () => (await mesh.SagaAsync(intent.IntentId))!.LastHeartbeatSequence == 1, "the victim's heartbeat");
        var after = await mesh.SagaAsync(intent.IntentId);
        Assert.Equal("Executing", after!.CurrentState);
        Assert.Equal(before!.Agent, after.Agent);
        Assert.Equal(before.AgentKey, after.AgentKey);
        Assert.Equal(before.HaltId, after.HaltId);
        Assert.False(after.QuarantineRequested);
        Assert.False(await mesh.Quarantine.IsQuarantinedAsync(victim.Subject, CancellationToken.None));
        var lineageAfter = (await mesh.Lineage.FindAsync(intent.IntentId.ToString("D"))).Select(r => r.Key).ToList();
        Assert.Equal([.. lineageBefore, $"heartbeat:{intent.IntentId:D}:1"], lineageAfter);
        Assert.Null(await mesh.Lineage.GetByKeyAsync($"quarantined:{intent.IntentId:D}"));
    }

    [Fact(Timeout = 300_000)]
    public async Task Forged_replayed_foreign_and_unsigned_execution_reports_change_nothing_and_the_real_agents_reports_work()
    {
        await using var mesh = await BoundaryMesh.StartAsync(rabbit, output);
        var (victim, intent, _) = await RunningExecutionAsync(mesh);
        var attacker = await mesh.AgentAsync("attacker");
        var id = intent.IntentId;
        var now = DateTimeOffset.UtcNow;
        var heartbeat = ExecutionReportSignature.Sign(new ExecutionHeartbeat(id, victim.Domain, victim.Subject, 1, now), victim.PrivateKey);
        await victim.SendAsync(heartbeat);
        await BoundaryMesh.EventuallyAsync(async () => (await mesh.SagaAsync(id))!.LastHeartbeatSequence == 1, "the victim's first heartbeat");

        object[] reports =
        [
            new ExecutionStarted(id, victim.Domain, victim.Subject, "g-forged", now),
            new ExecutionHeartbeat(id, victim.Domain, victim.Subject, 7, now),
            new ExecutionCompleted(id, victim.Domain, victim.Subject, now, "forged"),
            new ExecutionHalted(id, victim.Domain, victim.Subject, GovernanceReason.OperatorHalt, "forged", now, null),
        ];
        var sent = new Dictionary<string, string>();
        foreach (var report in reports)
        {
            var kind = report.GetType().Name;
            // unsigned, in the victim's name
            sent[await attacker.SendAsync(report)] = "unsigned " + kind;
            // signed by the attacker's key, in the victim's name
            sent[await attacker.SendAsync(SignWith(report, attacker.PrivateKey))] = "forged " + kind;
            // signed by the attacker, in its own name, for the victim's execution
            sent[await attacker.SendAsync(SignWith(Rename(report, attacker.Subject), attacker.PrivateKey))] = "foreign " + kind;
        }

        // The victim's own heartbeat, replayed as it was.
        sent[await attacker.SendAsync(heartbeat)] = "replayed ExecutionHeartbeat";

        var errors = await mesh.ErrorsAsync(sent.Keys, "enforce-reports_error");
        foreach (var (messageId, what) in sent)
        {
            output.WriteLine($"{what}: {errors[messageId]}");
            Assert.Contains("rejected", errors[messageId], StringComparison.Ordinal);
            // never retried: it can never succeed
            Assert.EndsWith("retries 0, redeliveries 0]", errors[messageId], StringComparison.Ordinal);
        }

        var saga = await mesh.SagaAsync(id);
        Assert.Equal("Executing", saga!.CurrentState);
        Assert.Equal(1, saga.LastHeartbeatSequence);
        Assert.Equal(victim.Subject, saga.Agent);
        var keys = (await mesh.Lineage.FindAsync(id.ToString("D"))).Select(r => r.Key).ToList();
        Assert.DoesNotContain($"completed:{id:D}", keys);
        Assert.DoesNotContain($"halted:{id:D}", keys);
        Assert.DoesNotContain($"heartbeat:{id:D}:7", keys);

        // The real agent's reports still work.
        await victim.SendAsync(ExecutionReportSignature.Sign(new ExecutionHeartbeat(id, victim.Domain, victim.Subject, 2, DateTimeOffset.UtcNow), victim.PrivateKey));
        await victim.SendAsync(ExecutionReportSignature.Sign(new ExecutionCompleted(id, victim.Domain, victim.Subject, DateTimeOffset.UtcNow, "rolled out"), victim.PrivateKey));
        saga = await mesh.SagaInStateAsync(id, "Completed");
        Assert.Equal(2, saga.LastHeartbeatSequence);
        await BoundaryMesh.EventuallyAsync(async () => await mesh.Lineage.GetByKeyAsync($"completed:{id:D}") is not null, "completed in lineage");
        var completed = await mesh.Lineage.GetByKeyAsync($"completed:{id:D}");
        Assert.Contains("rolled out", System.Text.Encoding.UTF8.GetString(completed!.Data), StringComparison.Ordinal);
    }

    [Fact(Timeout = 300_000)]
    public async Task An_agent_user_cannot_read_or_route_to_itself_another_agents_grants_denials_or_halts_nor_write_its_queue()
    {
        await using var mesh = await BoundaryMesh.StartAsync(rabbit, output);
        var (victim, _, _) = await RunningExecutionAsync(mesh);
        var attacker = await mesh.AgentAsync("attacker");
        var prefix = mesh.Run.Prefix;

        // read the victim's queue
        Assert.Equal(403, await attacker.TryAsync(c => c.BasicGetAsync(victim.Queue, autoAck: true)));
        // a queue of its own, bound to where grants, denials and halts are published
        Assert.Equal(403, await attacker.TryAsync(c => c.QueueDeclareAsync("spy-" + Guid.NewGuid().ToString("N"), false, true, true)));
        foreach (var type in new[] { nameof(GrantIssued), nameof(GrantDenied), nameof(GrantRenewed), nameof(HaltExecution) })
        {
            Assert.Equal(403, await attacker.TryAsync(c => c.QueueBindAsync(attacker.Queue, $"{prefix}MeshBus.Contracts:{type}", "")));
        }

        // write into the victim's queue (a forged denial or halt would have to get there)
        var forged = new GrantDenied(Guid.NewGuid(), mesh.Run.Domain, victim.Subject, GovernanceReason.PolicyRevoked, "forged", null, []);
        Assert.Equal(403, await attacker.TryAsync(c => c.BasicPublishAsync(victim.Queue, "", mandatory: false, new RabbitMQ.Client.BasicProperties(), RawAgent.Envelope(forged)).AsTask()));
        // declare or delete anything
        Assert.Equal(403, await attacker.TryAsync(c => c.ExchangeDeclareAsync("spy-" + Guid.NewGuid().ToString("N"), "fanout", false, true)));
        Assert.Equal(403, await attacker.TryAsync(c => c.ExchangeDeleteAsync(attacker.IntentsExchange)));
        // and its own queue, which the mesh declared for it, is readable
        Assert.Equal(0, await attacker.TryAsync(c => c.BasicGetAsync(attacker.Queue, autoAck: true)));
    }

    [Fact(Timeout = 300_000)]
    public async Task An_intent_under_another_agents_intent_id_is_answered_to_its_sender_alone_and_changes_nothing_of_the_first()
    {
        await using var mesh = await BoundaryMesh.StartAsync(rabbit, output);
        var (victim, intent, grant) = await RunningExecutionAsync(mesh);
        var attacker = await mesh.AgentAsync("attacker");
        var before = await mesh.SagaAsync(intent.IntentId);
        var record = await mesh.Lineage.GetByKeyAsync($"decision:{intent.IntentId:D}");
        var lineageBefore = (await mesh.Lineage.FindAsync(intent.IntentId.ToString("D"))).Select(r => r.Key).ToList();

        var squat = attacker.Intent(intent.IntentId);
        await attacker.SendAsync(squat);

        var denial = await attacker.ReceiveAsync<GrantDenied>(d => d.IntentId == intent.IntentId);
        Assert.Equal(GovernanceReason.ReplayDetected, denial.Reason);
        Assert.Equal(attacker.Subject, denial.Agent);
        // the victim heard nothing of it; its execution, record and saga are as they were
        await victim.SendAsync(ExecutionReportSignature.Sign(new ExecutionHeartbeat(intent.IntentId, victim.Domain, victim.Subject, 1, DateTimeOffset.UtcNow), victim.PrivateKey));
        await BoundaryMesh.EventuallyAsync(async () => (await mesh.SagaAsync(intent.IntentId))!.LastHeartbeatSequence == 1, "the victim's heartbeat");
        Assert.Equal(0u, (await victim.Channel.QueueDeclarePassiveAsync(victim.Queue)).MessageCount);
        var after = await mesh.SagaAsync(intent.IntentId);
        Assert.Equal("Executing", after!.CurrentState);
        Assert.Equal(victim.Subject, after.Agent);
        Assert.Equal(before!.Action, after.Action);
        Assert.Equal(before.AgentKey, after.AgentKey);
        Assert.Equal(record!.Data, (await mesh.Lineage.GetByKeyAsync($"decision:{intent.IntentId:D}"))!.Data);
        Assert.Equal([.. lineageBefore, $"heartbeat:{intent.IntentId:D}:1"], (await mesh.Lineage.FindAsync(intent.IntentId.ToString("D"))).Select(r => r.Key).ToList());
        Assert.Equal(grant.Agent, victim.Subject);
    }

    [Fact(Timeout = 300_000)]
    public async Task Oversized_and_over_deep_intents_are_malformed_input_before_any_signature_work_and_the_mesh_keeps_serving()
    {
        await using var mesh = await BoundaryMesh.StartAsync(rabbit, output, new Dictionary<string, string> { ["AgentIngress:MaxParameterDepth"] = "6" });
        var (agent, _, _) = await RunningExecutionAsync(mesh, "agent");
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 10)) + "1" + new string('}', 10);
        var wide = "{" + string.Join(",", Enumerable.Range(0, 300).Select(i => $"\"p{i}\":{i}")) + "}";
        var bad = new Dictionary<string, IntentSubmitted>
        {
            ["5 MB"] = agent.Intent(parameters: JsonSerializer.Serialize(new { blob = new string('x', 5 * 1024 * 1024) })),
            ["80 KB of short strings"] = agent.Intent(parameters: JsonSerializer.Serialize(new { blob = Enumerable.Repeat(new string('y', 1000), 80) })),
            ["too deep"] = agent.Intent(parameters: deep),
            ["too many"] = agent.Intent(parameters: wide),
            ["long action"] = agent.Intent(action: new string('d', 5000)),
        };
        var sent = new Dictionary<string, string>();
        foreach (var (what, intent) in bad)
        {
            sent[await agent.SendAsync(intent)] = what;
        }

        var errors = await mesh.ErrorsAsync(sent.Keys, "authorize-intents_error");
        foreach (var (messageId, what) in sent)
        {
            output.WriteLine($"{what}: {errors[messageId]}");
            Assert.Contains("MalformedInput", errors[messageId], StringComparison.Ordinal);
            Assert.EndsWith("retries 0, redeliveries 0]", errors[messageId], StringComparison.Ordinal);
        }

        // A number outside ±2^53 is malformed input (answered), never a signature failure.
        // (Its signature cannot be computed over a number the canonical form refuses: the shape check must come first.)
        var huge = agent.Intent() with { MaxDurationSeconds = (1L << 53) + 2 };
        await agent.SendAsync(huge);
        Assert.Equal(GovernanceReason.MalformedInput, (await agent.ReceiveAsync<GrantDenied>(d => d.IntentId == huge.IntentId)).Reason);

        // The mesh keeps serving: a good intent after the barrage is granted.
        var good = agent.Intent();
        await agent.SendAsync(good);
        await agent.ReceiveAsync<GrantIssued>(g => g.IntentId == good.IntentId);
        foreach (var intent in bad.Values)
        {
            Assert.Empty(await mesh.Lineage.FindAsync(intent.IntentId.ToString("D")));
            Assert.Null(await mesh.SagaAsync(intent.IntentId));
        }
    }

    [Fact(Timeout = 300_000)]
    public async Task An_intent_with_a_forged_credential_signature_goes_to_the_error_queue_at_once()
    {
        await using var mesh = await BoundaryMesh.StartAsync(rabbit, output);
        var agent = await mesh.AgentAsync("forger");
        var parts = agent.Credential.Split('.');
        var forgedCredential = parts[0] + "." + parts[1] + "." + Trust.Crypto.Base64Url.Encode(new byte[64]);
        var intent = IntentSignature.Sign(agent.Intent() with { Credential = forgedCredential, Signature = "" }, agent.PrivateKey);

        var id = await agent.SendAsync(intent);

        var error = (await mesh.ErrorsAsync([id], "authorize-intents_error"))[id];
        output.WriteLine(error);
        Assert.Contains("no verified subject to answer", error, StringComparison.Ordinal);
        Assert.EndsWith("retries 0, redeliveries 0]", error, StringComparison.Ordinal);
    }

    private static object SignWith(object report, byte[] key) => report switch
    {
        ExecutionStarted m => ExecutionReportSignature.Sign(m, key),
        ExecutionHeartbeat m => ExecutionReportSignature.Sign(m, key),
        ExecutionCompleted m => ExecutionReportSignature.Sign(m, key),
        ExecutionHalted m => ExecutionReportSignature.Sign(m, key),
        _ => throw new ArgumentException(report.GetType().Name),
    };

    private static object Rename(object report, string agent) => report switch
    {
        ExecutionStarted m => m with { Agent = agent },
        ExecutionHeartbeat m => m with { Agent = agent },
        ExecutionCompleted m => m with { Agent = agent },
        ExecutionHalted m => m with { Agent = agent },
        _ => throw new ArgumentException(report.GetType().Name),
    };

    /// <summary>
    /// A well-formed body of <paramref name="type"/> aimed at the victim: every intent id is the victim's live one, every
    /// agent the victim, every domain the mesh's, so that if it were dispatched it would reach the victim's saga.
    /// </summary>
    private static JsonObject Sample(Type type, RawAgent victim, Guid intentId, string domain, int depth = 0)
    {
        var o = new JsonObject();
        foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.Name != "EqualityContract"))
        {
            var name = JsonNamingPolicy.CamelCase.ConvertName(p.Name);
            var t = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            o[name] = t switch
            {
                _ when t == typeof(Guid) => name == "intentId" ? intentId.ToString() : Guid.NewGuid().ToString(),
                _ when t == typeof(string) => name switch
                {
                    "agent" or "subject" => victim.Subject,
                    "domain" or "targetDomain" or "publisher" => domain,
                    "credential" => victim.Credential,
                    _ => "x",
                },
                _ when t == typeof(DateTimeOffset) => DateTimeOffset.UtcNow.ToString("O"),
                _ when t == typeof(long) || t == typeof(int) => name is "sequence" or "epoch" ? 1L << 40 : 1,
                _ when t == typeof(bool) => true,
                _ when t.IsEnum => name == "reason" ? (int)GovernanceReason.HaltNotAcknowledged : 0,
                _ when t == typeof(JsonElement) => new JsonObject(),
                _ when t == typeof(IReadOnlyList<string>) => new JsonArray(),
                _ when t.Namespace == "MeshBus.Contracts" && depth < 2 => Sample(t, victim, intentId, domain, depth + 1),
                _ => throw new InvalidOperationException($"no sample for {type.Name}.{p.Name} of {t}"),
            };
        }

        return o;
    }
}
