using MassTransit;
using MassTransit.Testing;
using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>
/// Issue 9's decision rules, each a test that fails if the rule is removed. They run twice: on the in-memory transport
/// with SQLite (<see cref="AuthorizeDecisionTests"/>) and on RabbitMQ with PostgreSQL
/// (<see cref="AuthorizeDecisionOnRealServersTests"/>), both composed by the real hosting.
/// </summary>
public abstract class AuthorizeDecisionTestsBase
{
    /// <summary>The servers the harnesses of this test use; null for the in-memory transport and SQLite.</summary>
    protected virtual RealServers? Servers => null;

    private static DateTimeOffset Now(AuthorizeHarness h) => h.Time.GetUtcNow();

    private Task<AuthorizeHarness> StartAsync(
        TestDomainKeys? keys = null,
        Action<IServiceCollection>? configure = null,
        string? dataDirectory = null,
        IDictionary<string, string?>? settings = null) =>
        AuthorizeHarness.StartAsync(keys, configure, dataDirectory, settings, Servers);

    [Fact]
    public async Task Allowed_intent_gets_a_grant_the_agent_verifies_after_the_decision_is_recorded()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);

        var grant = Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
        var verified = h.VerifyGrant(grant, agent, IntentSignature.Digest(intent));
        Assert.True(verified.IsValid, verified.Detail);
        Assert.Equal(grant.LineageIndex, verified.Value!.LineageIndex);
        Assert.Equal(TimeSpan.FromSeconds(120), verified.Value.ExpiresAt - verified.Value.IssuedAt);
        Assert.Equal(verified.Value.ExpiresAt, grant.ExpiresAt);

        var record = await h.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId));
        Assert.NotNull(record);
        Assert.Equal(grant.LineageIndex, record.Index);
        var stored = DecisionRecord.Parse(record.Data);
        Assert.True(stored.Allowed);
        Assert.Equal(IntentSignature.Digest(intent), stored.IntentDigest);
        Assert.Equal(["allow-deploy"], stored.MatchedRules);
    }

    [Fact]
    public async Task Grant_goes_only_to_the_verified_agents_queue()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);
        await h.AnswerAsync(intent.IntentId);

        var sent = Assert.Single(h.Recorder.Sent, s => s.Message is GrantIssued);
        Assert.EndsWith(AgentQueue.Name(agent.Subject), sent.Destination!.AbsolutePath, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lease_is_capped_by_the_intents_max_duration()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h), maxDurationSeconds: 30);

        await h.SubmitAsync(intent);

        var grant = Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
        var claims = h.VerifyGrant(grant, agent).Value!;
        Assert.Equal(TimeSpan.FromSeconds(30), claims.ExpiresAt - claims.IssuedAt);
    }

    [Fact]
    public async Task Policy_denial_is_recorded_and_sent_with_its_reason()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h), action: "delete");

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.NoMatchingRule);
        Assert.NotNull(denied.LineageIndex);
        var record = DecisionRecord.Parse((await h.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId)))!.Data);
        Assert.False(record.Allowed);
        Assert.Null(record.Lease);
    }

    [Fact]
    public async Task Redelivered_intent_gets_the_byte_identical_grant()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);
        var first = Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
        h.Time.Advance(TimeSpan.FromSeconds(5));
        await h.SubmitAsync(intent);
        var answers = await h.AnswersAsync(intent.IntentId, 2);

        Assert.Equal(2, answers.Count);
        var second = Assert.IsType<GrantIssued>(answers[1]);
        Assert.Equal(first.Grant, second.Grant);
        Assert.Equal(first.LineageIndex, second.LineageIndex);
        Assert.Equal(1, (await h.Lineage.GetTreeHeadAsync()).Size);
    }

    [Fact]
    public async Task Replica_that_finds_the_record_sends_the_recorded_grant_even_before_its_own_sync()
    {
        // A replica killed between the append and the send: the redelivery lands on another replica that has not yet
        // seen a heartbeat. The recorded decision is released as recorded, byte for byte.
        var keys = new TestDomainKeys();
        var dir = Path.Combine(Path.GetTempPath(), "meshbus-authz-" + Guid.NewGuid().ToString("N"));
        var agent = new TestAgent(keys);
        await using var h1 = await StartAsync(keys, dataDirectory: dir);
        await h1.HeartbeatAsync();
        var intent = agent.Intent(Now(h1));
        await h1.SubmitAsync(intent);
        var first = Assert.IsType<GrantIssued>(await h1.AnswerAsync(intent.IntentId));

        await using var h2 = await StartAsync(keys, dataDirectory: dir);
        await h2.SubmitAsync(intent);

        var again = Assert.IsType<GrantIssued>(await h2.AnswerAsync(intent.IntentId));
        Assert.Equal(first.Grant, again.Grant);
    }

    [Fact]
    public async Task Same_intent_id_with_another_digest_is_a_replay()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);
        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));

        var other = agent.Intent(Now(h), parameters: """{"replicas":30}""", id: intent.IntentId);
        await h.SubmitAsync(other);
        var answers = await h.AnswersAsync(intent.IntentId, 2);

        var denied = Assert.IsType<GrantDenied>(answers[1]);
        Assert.Equal(GovernanceReason.ReplayDetected, denied.Reason);
        Assert.Single(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Nonce_already_spent_on_another_intent_id_is_a_replay()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var first = agent.Intent(Now(h));
        await h.SubmitAsync(first);
        Assert.IsType<GrantIssued>(await h.AnswerAsync(first.IntentId));

        // Validly signed by the agent, new id, spent nonce: a second decision for one signed request is never given.
        var again = IntentSignature.Sign(agent.Intent(Now(h)) with { Nonce = first.Nonce, Signature = "" }, agent.PrivateKey);
        await h.SubmitAsync(again);

        var denied = await h.DeniedAsync(again.IntentId, GovernanceReason.ReplayDetected);
        Assert.Contains(first.IntentId.ToString(), denied.Detail, StringComparison.Ordinal);
        Assert.NotNull(denied.LineageIndex);
        Assert.Single(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Nonce_is_claimed_only_after_the_signature_verified()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var genuine = agent.Intent(Now(h));

        // Someone who saw the nonce on the wire tries to spend it first, under another id, without the agent's key.
        var squatter = genuine with { IntentId = Guid.NewGuid() };
        await h.SubmitAsync(squatter);
        await h.DeniedAsync(squatter.IntentId, GovernanceReason.SignatureInvalid);

        await h.SubmitAsync(genuine);
        Assert.IsType<GrantIssued>(await h.AnswerAsync(genuine.IntentId));
    }

    [Fact]
    public async Task Intent_older_than_the_replay_window_is_denied()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        var intent = agent.Intent(Now(h));
        h.Time.Advance(TimeSpan.FromMinutes(6));
        await h.HeartbeatAsync();

        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.ReplayDetected);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Intent_dated_in_the_future_beyond_the_skew_is_denied()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h).AddMinutes(5));

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.MalformedInput);
        Assert.Contains("in the future", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Grant_is_denied_when_domain_sync_is_stale_past_the_bound()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        h.Time.Advance(TimeSpan.FromSeconds(31));
        var intent = agent.Intent(Now(h).AddSeconds(-25));

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains("heartbeat", denied.Detail, StringComparison.Ordinal);
        Assert.NotNull(denied.LineageIndex);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Grant_is_denied_when_no_heartbeat_was_ever_seen_after_the_redeliveries()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        // Denied on the last allowed redelivery (Authorize:SyncMaxRedeliveries = 3), after four deliveries.
        Assert.Contains("3 redeliveries", denied.Detail, StringComparison.Ordinal);
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<IntentSubmitted>().Count() >= 4, "the intent's four deliveries");
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Intent_waiting_for_sync_is_granted_once_a_heartbeat_arrives()
    {
        await using var h = await StartAsync(settings: new Dictionary<string, string?> { ["Authorize:SyncMaxRedeliveries"] = "5" });
        var agent = new TestAgent(h.Keys);
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);
        // The first delivery met no heartbeat and went back for redelivery (the redelivery filter handles the fault, so
        // the observer sees a consume without one; a fault here would mean the error queue, i.e. the wait was lost).
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<IntentSubmitted>().Any(), "the intent's first delivery");
        Assert.DoesNotContain(h.Recorder.ConsumedOf<IntentSubmitted>(), m => m.Fault is not null);
        Assert.Empty(h.Answers(intent.IntentId));
        await h.HeartbeatAsync();

        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));
    }

    [Fact]
    public async Task Grant_is_denied_when_the_announced_key_set_is_not_the_one_loaded()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync(keySetSequence: 2);
        var intent = agent.Intent(Now(h).AddSeconds(-25));

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains("key set", denied.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Grant_is_denied_when_the_loaded_policy_epoch_is_not_the_applied_one()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        await h.Bus.Publish(h.Keys.Governance.Sign(new PolicySynced(TestDomainKeys.Domain, TestDomainKeys.Domain, PolicyScope.Domain, 8, "sha256:bb", Now(h))));
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<PolicySynced>().Any(), "PolicySynced");
        var intent = agent.Intent(Now(h).AddSeconds(-25));

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains("epoch", denied.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Intent_for_an_unknown_domain_is_denied()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h), target: "globex.example/prod");

        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.UnknownDomain);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Expired_credential_is_denied_to_its_verified_subject()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys, credentialLifetime: TimeSpan.FromMinutes(1));
        h.Time.Advance(TimeSpan.FromMinutes(2));
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.CredentialExpired);
        Assert.Equal(agent.Subject, denied.Agent);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Credential_from_an_unknown_key_gets_no_answer_and_goes_to_the_error_queue()
    {
        await using var h = await StartAsync();
        var forger = new TestAgent(h.Keys, credentialSigner: Ed25519Signer.Generate(KeyUsage.Credential));
        await h.HeartbeatAsync();
        var intent = forger.Intent(Now(h));

        await h.SubmitAsync(intent);

        await h.EventuallyAsync(() => h.Recorder.PublishedOf<Fault<IntentSubmitted>>().Any(m => m.Message.IntentId == intent.IntentId), "Fault<IntentSubmitted>");
        Assert.Empty(h.Answers(intent.IntentId));
    }

    [Fact]
    public async Task Credential_of_another_agent_is_denied()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        var other = new TestAgent(h.Keys, "intruder");
        await h.HeartbeatAsync();
        var intent = IntentSignature.Sign(agent.Intent(Now(h)) with { Credential = other.Credential, Signature = "" }, agent.PrivateKey);

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.CredentialInvalid);
        Assert.Equal(other.Subject, denied.Agent);
    }

    [Fact]
    public async Task Intent_with_a_bad_signature_is_denied()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h)) with { Resource = "k8s://cluster-a/ns/payments" };

        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.SignatureInvalid);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Theory]
    [InlineData("[1,2]")]
    [InlineData("""{"n":9007199254740993}""")]
    [InlineData("""{"n":1.5}""")]
    public async Task Malformed_parameters_are_denied_not_crashed_on(string parameters)
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h)) with { Parameters = System.Text.Json.JsonDocument.Parse(parameters).RootElement.Clone() };

        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.MalformedInput);
    }

    [Fact]
    public async Task Quarantined_agent_is_denied_and_granted_again_after_release()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var quarantinedAt = Now(h);
        await h.Bus.Publish(h.Keys.Governance.Sign(new AgentQuarantined(TestDomainKeys.Domain, agent.Subject, GovernanceReason.HaltNotAcknowledged, "halt not acknowledged", null, quarantinedAt)));
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<AgentQuarantined>().Any(), "AgentQuarantined");
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);
        await h.DeniedAsync(intent.IntentId, GovernanceReason.Quarantined);

        h.Time.Advance(TimeSpan.FromSeconds(1));
        var release = new AgentReleased(TestDomainKeys.Domain, agent.Subject, "operator", Now(h)) { QuarantinedAt = quarantinedAt };
        await h.Bus.Publish(release with { Signature = GovernanceSignatures.SignAsRoot(release, h.Keys.Root) });
        await h.EventuallyAsync(() => h.Recorder.ConsumedOf<AgentReleased>().Any(), "AgentReleased");
        var next = agent.Intent(Now(h));
        await h.SubmitAsync(next);
        Assert.IsType<GrantIssued>(await h.AnswerAsync(next.IntentId));
    }

    [Fact]
    public async Task Policy_error_is_a_denial()
    {
        await using var h = await StartAsync();
        h.Policy.Throws = true;
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.PolicyError);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Lineage_down_is_a_denial_without_a_grant()
    {
        FaultyLineageLog? faulty = null;
        await using var h = await StartAsync(configure: s => s.AddSingleton<ILineageLog>(sp =>
            faulty = new FaultyLineageLog(AuthorizeHarness.OpenLineage(sp))
            {
                Throws = true,
            }));
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);

        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.LineageUnavailable);
        Assert.Null(denied.LineageIndex);
        Assert.Contains("not recorded", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Lineage_slower_than_its_bound_is_a_denial_without_a_grant()
    {
        FaultyLineageLog? faulty = null;
        await using var h = await StartAsync(configure: s => s.AddSingleton<ILineageLog>(sp =>
            faulty = new FaultyLineageLog(AuthorizeHarness.OpenLineage(sp))
            {
                Stalls = true,
            }));
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);

        // Move the clock past the 2 s bound once the append is waiting (no real 2 s wait).
        var denied = await h.DeniedAsync(intent.IntentId, GovernanceReason.LineageUnavailable, () =>
        {
            if (faulty is { StalledCalls: > 0 })
            {
                h.Time.Advance(TimeSpan.FromSeconds(1));
            }
        });
        Assert.Contains("within 2000 ms", denied.Detail, StringComparison.Ordinal);
        Assert.Contains("not recorded", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Any_exception_while_deciding_is_a_denial_never_a_grant()
    {
        await using var h = await StartAsync(configure: s => s.AddSingleton<IGrantSigner, ThrowingSigner>());
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));

        await h.SubmitAsync(intent);

        await h.DeniedAsync(intent.IntentId, GovernanceReason.InternalError);
        Assert.Empty(h.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Renewal_is_recorded_and_sent_as_a_new_lease()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);
        var grant = Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));

        h.Time.Advance(TimeSpan.FromSeconds(20));
        await h.HeartbeatAsync();
        await h.Bus.Publish(new EvaluateIntent(intent.IntentId, TestDomainKeys.Domain, EvaluationKind.Renewal, 1, Now(h)));
        var answers = await h.AnswersAsync(intent.IntentId, 2);

        var renewed = Assert.IsType<GrantRenewed>(answers[1]);
        Assert.Equal(1, renewed.Renewal);
        Assert.True(renewed.ExpiresAt > grant.ExpiresAt);
        Assert.NotEqual(grant.Grant, renewed.Grant);
        Assert.NotNull(await h.Lineage.GetByKeyAsync(DecisionRecord.RenewalKey(intent.IntentId, 1)));
    }

    [Fact]
    public async Task Renewal_that_policy_no_longer_allows_is_revoked()
    {
        await using var h = await StartAsync();
        var agent = new TestAgent(h.Keys);
        await h.HeartbeatAsync();
        var intent = agent.Intent(Now(h));
        await h.SubmitAsync(intent);
        Assert.IsType<GrantIssued>(await h.AnswerAsync(intent.IntentId));

        h.Policy.AllowedActions.Clear();
        await h.Bus.Publish(new EvaluateIntent(intent.IntentId, TestDomainKeys.Domain, EvaluationKind.Reevaluation, 1, Now(h)));
        var answers = await h.AnswersAsync(intent.IntentId, 2);

        var denied = Assert.IsType<GrantDenied>(answers[1]);
        Assert.Equal(GovernanceReason.PolicyRevoked, denied.Reason);
        Assert.NotNull(denied.LineageIndex);
    }

    private sealed class ThrowingSigner : IGrantSigner
    {
        public string Sign(LeaseClaims claims, long lineageIndex) => throw new InvalidOperationException("grant key unavailable");
    }
}

/// <summary>The rules on the in-memory transport with SQLite.</summary>
public sealed class AuthorizeDecisionTests : AuthorizeDecisionTestsBase;

/// <summary>The same rules on RabbitMQ with PostgreSQL (a database per test; each harness on its own entity prefix).</summary>
[Collection("rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class AuthorizeDecisionOnRealServersTests(RabbitMqFixture rabbit, PostgresFixture postgres) : AuthorizeDecisionTestsBase, IAsyncLifetime
{
    private RealServers? _servers;

    protected override RealServers? Servers => _servers;

    public async Task InitializeAsync() => _servers = new RealServers(rabbit.AmqpUri, await postgres.CreateDatabaseAsync("authz"));

    public Task DisposeAsync() => Task.CompletedTask;
}
