using MeshBus.Contracts;
using MeshBus.Ledger.Decisions;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>
/// Cross-domain intents (DESIGN.md §3): the origin O records its egress decision and endorses; the target T verifies the
/// endorsement, decides, records and grants. Each fail-closed rule has a test that fails when the rule is removed.
/// </summary>
public sealed class EndorsementTests
{
    private const string T = CrossDomainHarness.TargetDomain;

    private static DateTimeOffset Now(AuthorizeHarness h) => h.Time.GetUtcNow();

    /// <summary>Both sides fresh, O's egress policy loaded, an agent of O.</summary>
    private static async Task<(CrossDomainHarness X, TestAgent Agent)> ReadyAsync(
        Action<IServiceCollection>? configureOrigin = null,
        Action<IServiceCollection>? configureTarget = null)
    {
        var x = await CrossDomainHarness.StartAsync(configureOrigin, configureTarget);
        await x.AllFreshAsync();
        await x.LoadEgressAsync();
        return (x, new TestAgent(x.OriginKeys));
    }

    /// <summary>Submits at O and returns O's endorsement.</summary>
    private static async Task<IntentEndorsed> EndorseAsync(CrossDomainHarness x, IntentSubmitted intent)
    {
        await x.Origin.SubmitAsync(intent);
        return await x.EndorsedAsync(intent.IntentId);
    }

    [Fact]
    public async Task Cross_domain_intent_is_endorsed_by_the_origin_and_granted_by_the_target()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);

        var endorsed = await EndorseAsync(x, intent);

        // O recorded its egress decision; the endorsement carries that record's index and grants nothing by itself.
        var egressEntry = await x.Origin.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId));
        Assert.NotNull(egressEntry);
        var egress = DecisionRecord.Parse(egressEntry.Data);
        Assert.Equal(DecisionRecord.EgressKind, egress.Kind);
        Assert.True(egress.Allowed);
        Assert.Null(egress.Lease);
        Assert.Equal(CrossDomainHarness.EgressEpoch, egress.PolicyEpoch);
        var claims = Endorsements.Verify(endorsed.Endorsement, new EndorsementVerificationOptions
        {
            Audience = T,
            KeyResolver = x.TargetTrust,
            Now = Now(x.Target),
            IntentDigest = IntentSignature.Digest(intent),
        });
        Assert.True(claims.IsValid, claims.Detail);
        Assert.Equal(TestDomainKeys.Domain, claims.Value!.Issuer);
        Assert.Equal(egressEntry.Index, claims.Value.LineageIndex);
        Assert.Equal(egress.PolicyDigest, claims.Value.EgressDigest);
        Assert.Equal(Now(x.Origin).AddSeconds(CrossDomainHarness.TtlSeconds), claims.Value.ExpiresAt);
        Assert.Equal(CrossDomainHarness.EgressEpoch, endorsed.EgressEpoch);
        Assert.Equal("", endorsed.FederationPolicyDigest);
        Assert.Empty(x.Origin.Answers(intent.IntentId));

        await x.HandOverAsync(endorsed);

        // T decided, recorded and granted: iss T, aud T, cnf the agent's key, verified at home with T's keys.
        var grant = Assert.IsType<GrantIssued>((await x.TargetAnswersAsync(intent.IntentId))[0]);
        var verified = x.VerifyGrant(grant, agent, intent);
        Assert.True(verified.IsValid, verified.Detail);
        Assert.Equal(T, verified.Value!.Issuer);
        Assert.Equal(agent.Subject, verified.Value.Subject);
        Assert.Equal(grant.LineageIndex, verified.Value.LineageIndex);
        var record = DecisionRecord.Parse((await x.Target.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId)))!.Data);
        Assert.Equal("decision", record.Kind);
        Assert.True(record.Allowed);
        Assert.Equal(T, record.Domain);
        // The agent's queue is in O: T publishes for the bridge and sends nothing to a queue of its own broker.
        Assert.Empty(x.Target.Recorder.SentOf<GrantIssued>());
    }

    [Fact]
    public async Task Origin_denies_an_intent_for_a_domain_that_is_not_its_peer()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        // P is T's peer, not O's: trust is not transitive.
        var intent = agent.Intent(Now(x.Origin), target: CrossDomainHarness.ThirdDomain);

        await x.Origin.SubmitAsync(intent);

        var denied = await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.UnknownDomain);
        Assert.NotNull(denied.LineageIndex);
        Assert.Empty(x.Endorsements(intent.IntentId));
    }

    [Fact]
    public async Task Origin_denies_when_the_target_peer_has_not_sent_a_recent_heartbeat()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        x.Origin.Time.Advance(TimeSpan.FromSeconds(31));
        await x.Origin.HeartbeatAsync();
        var intent = agent.Intent(Now(x.Origin).AddSeconds(-25), target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains(T, denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Endorsements(intent.IntentId));
    }

    [Fact]
    public async Task A_credential_key_revoked_by_the_origins_key_set_stops_the_targets_grants_on_receipt()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var after = agent.Intent(Now(x.Origin), target: T);
        var second = await EndorseAsync(x, after);

        // O revokes its credential key: its root signs key set 2, which reaches T over the bridge.
        var credentialKey = x.OriginKeys.Signers[KeyUsage.Credential].KeyId;
        var revoking = x.OriginKeys.KeySet with { Sequence = 2, Revoked = [credentialKey] };
        var published = new KeySetPublished(TestDomainKeys.Domain, 2, revoking.Sign(x.OriginKeys.Root), Now(x.Target));
        await x.Target.Bus.Publish(published);
        await x.Target.EventuallyAsync(() => x.Target.Recorder.ConsumedOf<KeySetPublished>().Any(), "the key set taken by the target");
        Assert.Null(x.Target.Recorder.ConsumedOf<KeySetPublished>().Single().Fault);
        await x.HeartbeatAsync(x.Target, TestDomainKeys.Domain, keySetSequence: 2);

        await x.HandOverAsync(second);

        var denied = Assert.IsType<GrantDenied>((await x.TargetAnswersAsync(after.IntentId))[0]);
        Assert.Contains(credentialKey, denied.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_set_of_the_origin_not_signed_by_its_pinned_root_is_refused_by_the_target()
    {
        var (x, _) = await ReadyAsync();
        await using var __ = x;
        var credentialKey = x.OriginKeys.Signers[KeyUsage.Credential].KeyId;
        var forged = x.OriginKeys.KeySet with { Sequence = 2, Revoked = [credentialKey] };

        await x.Target.Bus.Publish(new KeySetPublished(TestDomainKeys.Domain, 2, forged.Sign(RootKey.Generate(TestDomainKeys.Domain)), Now(x.Target)));

        await x.Target.EventuallyAsync(() => x.Target.Recorder.ConsumedOf<KeySetPublished>().Any(), "the key set taken by the target");
        Assert.NotNull(x.Target.Recorder.ConsumedOf<KeySetPublished>().Single().Fault);
        Assert.Equal(1, x.TargetTrust.PeerKeySets[TestDomainKeys.Domain].Sequence);
    }

    [Fact]
    public async Task Origin_denies_sync_stale_while_trust_in_the_target_peer_is_lapsed_even_with_a_recent_heartbeat()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        // Sync's watchdog lapsed the peer (a stall, or a contradiction it signed): the shared per-peer state says so.
        var peers = x.Origin.Services.GetRequiredService<IPeerSyncStore>();
        await peers.SetLapseAsync(T, nameof(GovernanceReason.SyncStalled), "no good heartbeat since …", default);
        var intent = agent.Intent(Now(x.Origin).AddSeconds(-25), target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains("lapsed", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Endorsements(intent.IntentId));

        // Restored by the watchdog: the next intent goes on.
        await peers.SetLapseAsync(T, null, "", default);
        var next = agent.Intent(Now(x.Origin), target: T);
        await x.Origin.SubmitAsync(next);
        await x.EndorsedAsync(next.IntentId);
    }

    [Fact]
    public async Task Origin_waits_while_the_peer_announces_another_federation_policy_then_denies_it_federation_mismatch()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        // The peer adopted a federation epoch this domain has not loaded (it is on its way, or it never comes).
        await x.HeartbeatAsync(x.Origin, T, sentAt: Now(x.Origin).AddSeconds(1), federationDigest: "sha256:" + new string('e', 64));
        var intent = agent.Intent(Now(x.Origin), target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.FederationMismatch);
        Assert.Contains("federation policy", denied.Detail, StringComparison.Ordinal);
        Assert.True(x.Origin.Recorder.ConsumedOf<IntentSubmitted>().Count(m => m.Message.IntentId == intent.IntentId) >= 2, "the intent waited (was redelivered) before it was denied");
        Assert.Empty(x.Endorsements(intent.IntentId));

        // The peer announces the same federation policy again: the next intent goes on.
        await x.HeartbeatAsync(x.Origin, T, sentAt: Now(x.Origin).AddSeconds(2));
        var next = agent.Intent(Now(x.Origin), target: T);
        await x.Origin.SubmitAsync(next);
        await x.EndorsedAsync(next.IntentId);
    }

    [Fact]
    public async Task Origin_waits_for_a_peer_heartbeat_then_denies_it_stale()
    {
        var x = await CrossDomainHarness.StartAsync();
        await using var _ = x;
        await x.Origin.HeartbeatAsync();
        await x.LoadEgressAsync();
        var intent = new TestAgent(x.OriginKeys).Intent(Now(x.Origin), target: T);

        await x.Origin.SubmitAsync(intent);

        await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.True(x.Origin.Recorder.ConsumedOf<IntentSubmitted>().Count() >= 4, "the intent was redelivered before it was denied");
        Assert.Empty(x.Endorsements(intent.IntentId));
    }

    [Fact]
    public async Task Origin_denies_when_the_peer_announces_another_key_set_than_the_accepted_one()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        await x.HeartbeatAsync(x.Origin, T, keySetSequence: 2);
        var intent = agent.Intent(Now(x.Origin).AddSeconds(-25), target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains("key set", denied.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Origin_without_an_egress_policy_endorses_nothing()
    {
        var x = await CrossDomainHarness.StartAsync();
        await using var _ = x;
        await x.AllFreshAsync();
        var intent = new TestAgent(x.OriginKeys).Intent(Now(x.Origin), target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.NoMatchingRule);
        Assert.Contains("no egress policy", denied.Detail, StringComparison.Ordinal);
        var record = DecisionRecord.Parse((await x.Origin.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId)))!.Data);
        Assert.Equal(DecisionRecord.EgressKind, record.Kind);
        Assert.False(record.Allowed);
        Assert.Empty(x.Endorsements(intent.IntentId));
    }

    [Fact]
    public async Task Egress_policy_denial_is_recorded_and_sent_to_the_agent()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), action: "delete", target: T);

        await x.Origin.SubmitAsync(intent);

        var denied = await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.PolicyDenied);
        Assert.Contains("no-remote-delete", denied.MatchedRules);
        Assert.NotNull(denied.LineageIndex);
        Assert.Empty(x.Endorsements(intent.IntentId));
    }

    [Fact]
    public async Task Egress_policy_file_is_loaded_at_start()
    {
        var keys = new TestDomainKeys();
        var file = Path.Combine(Path.GetTempPath(), "meshbus-egress-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllTextAsync(file, CrossDomainHarness.EgressBundle(keys.Signers[KeyUsage.Grant]));
        try
        {
            var x = await CrossDomainHarness.StartAsync(originKeys: keys,
                originSettings: new Dictionary<string, string?> { ["Authorize:EgressPolicyBundleFile"] = file });
            await using var _ = x;
            await x.AllFreshAsync();
            var intent = new TestAgent(keys).Intent(Now(x.Origin), target: T);

            var endorsed = await EndorseAsync(x, intent);

            Assert.Equal(CrossDomainHarness.EgressEpoch, endorsed.EgressEpoch);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Egress_bundle_not_signed_by_the_origin_is_refused_and_nothing_is_endorsed()
    {
        var x = await CrossDomainHarness.StartAsync();
        await using var _ = x;
        await x.AllFreshAsync();
        var forged = CrossDomainHarness.EgressBundle(x.TargetDomainKeys.Signers[KeyUsage.Grant]);
        await x.Origin.Bus.Publish(new PolicyPublished(TestDomainKeys.Domain, PolicyScope.Egress, CrossDomainHarness.EgressEpoch, "sha256:x", forged, Now(x.Origin)));
        await x.Origin.EventuallyAsync(() => x.Origin.Recorder.ConsumedOf<PolicyPublished>().Any(m => m.Fault is not null), "refused egress bundle");
        var intent = new TestAgent(x.OriginKeys).Intent(Now(x.Origin), target: T);

        await x.Origin.SubmitAsync(intent);

        await x.Origin.DeniedAsync(intent.IntentId, GovernanceReason.NoMatchingRule);
        Assert.Empty(x.Endorsements(intent.IntentId));
    }

    [Fact]
    public async Task Redelivered_intent_gives_the_byte_identical_endorsement_and_grant()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var first = await EndorseAsync(x, intent);
        x.Origin.Time.Advance(TimeSpan.FromSeconds(5));

        await x.Origin.SubmitAsync(intent);
        var second = await x.EndorsedAsync(intent.IntentId, 2);

        Assert.Equal(first.Endorsement, second.Endorsement);
        Assert.Equal(1, (await x.Origin.Lineage.GetTreeHeadAsync()).Size);

        await x.HandOverAsync(first);
        var grant = Assert.IsType<GrantIssued>((await x.TargetAnswersAsync(intent.IntentId))[0]);
        x.Target.Time.Advance(TimeSpan.FromSeconds(5));
        await x.HandOverAsync(second);
        var again = Assert.IsType<GrantIssued>((await x.TargetAnswersAsync(intent.IntentId, 2))[1]);

        Assert.Equal(grant.Grant, again.Grant);
        Assert.Equal(1, (await x.Target.Lineage.GetTreeHeadAsync()).Size);
    }

    [Fact]
    public async Task Target_refuses_a_tampered_endorsement_to_its_error_queue_without_answering()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        var parts = endorsed.Endorsement.Split('.');
        var payload = System.Text.Json.Nodes.JsonNode.Parse(MeshBus.Trust.Crypto.Base64Url.Decode(parts[1]))!.AsObject();
        payload["egress_epoch"] = 99;
        var tampered = parts[0] + "." + MeshBus.Trust.Crypto.Base64Url.Encode(System.Text.Encoding.UTF8.GetBytes(payload.ToJsonString())) + "." + parts[2];

        await x.HandOverAsync(endorsed with { Endorsement = tampered, EgressEpoch = 99 });

        var fault = await x.TargetFaultAsync(intent.IntentId);
        Assert.Contains(nameof(GovernanceReason.SignatureInvalid), fault.Exceptions[0].Message, StringComparison.Ordinal);
        Assert.Empty(x.TargetAnswers(intent.IntentId));
        Assert.Null(await x.Target.Lineage.GetByKeyAsync(DecisionRecord.DecisionKey(intent.IntentId)));
    }

    [Fact]
    public async Task Target_refuses_an_endorsement_signed_by_a_key_of_the_origin_that_is_not_its_grant_key()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        var byCredentialKey = Endorsements.Issue(x.ClaimsOf(endorsed), new RelabelledSigner(x.OriginDomain.Signers[KeyUsage.Credential], KeyUsage.Grant));

        await x.HandOverAsync(endorsed with { Endorsement = byCredentialKey });

        var fault = await x.TargetFaultAsync(intent.IntentId);
        Assert.Contains("not a grant key", fault.Exceptions[0].Message, StringComparison.Ordinal);
        Assert.Empty(x.TargetAnswers(intent.IntentId));
    }

    [Fact]
    public async Task Target_refuses_an_endorsement_in_the_origins_name_signed_by_another_domain()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        var byThird = Endorsements.Issue(x.ClaimsOf(endorsed), x.Third.Signers[KeyUsage.Grant]);

        await x.HandOverAsync(endorsed with { Endorsement = byThird });

        var fault = await x.TargetFaultAsync(intent.IntentId);
        Assert.Contains(nameof(GovernanceReason.SignatureInvalid), fault.Exceptions[0].Message, StringComparison.Ordinal);
        Assert.Empty(x.TargetAnswers(intent.IntentId));
    }

    [Fact]
    public async Task Target_refuses_an_endorsement_from_a_domain_it_does_not_trust()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        var stranger = FederatedDomain.Create("umbrella.example/prod");
        var byStranger = Endorsements.Issue(x.ClaimsOf(endorsed) with { Issuer = stranger.Name }, stranger.Signers[KeyUsage.Grant]);

        await x.HandOverAsync(endorsed with { Domain = stranger.Name, Endorsement = byStranger });

        var fault = await x.TargetFaultAsync(intent.IntentId);
        Assert.Contains(nameof(GovernanceReason.UnknownDomain), fault.Exceptions[0].Message, StringComparison.Ordinal);
        Assert.Empty(x.TargetAnswers(intent.IntentId));
    }

    [Fact]
    public async Task Target_refuses_an_endorsement_of_a_pinned_peer_whose_key_set_has_not_arrived_to_its_error_queue()
    {
        var pending = FederatedDomain.Create("hooli.example/prod");
        var x = await CrossDomainHarness.StartAsync(pinnedAtTargetWithoutKeySet: pending);
        await using var _ = x;
        await x.AllFreshAsync();
        await x.LoadEgressAsync();
        var intent = new TestAgent(x.OriginKeys).Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        var byPending = Endorsements.Issue(x.ClaimsOf(endorsed) with { Issuer = pending.Name }, pending.Signers[KeyUsage.Grant]);

        await x.HandOverAsync(endorsed with { Domain = pending.Name, Endorsement = byPending });

        var fault = await x.TargetFaultAsync(intent.IntentId);
        Assert.Contains(nameof(GovernanceReason.SyncStale), fault.Exceptions[0].Message, StringComparison.Ordinal);
        Assert.Empty(x.TargetAnswers(intent.IntentId));
    }

    [Fact]
    public async Task Target_denies_an_intent_endorsed_by_a_peer_that_is_not_the_agents_home()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        // P is T's peer and signs validly, in its own name, an intent of O's agent.
        var byThird = Endorsements.Issue(x.ClaimsOf(endorsed) with { Issuer = CrossDomainHarness.ThirdDomain }, x.Third.Signers[KeyUsage.Grant]);

        await x.HandOverAsync(endorsed with { Domain = CrossDomainHarness.ThirdDomain, Endorsement = byThird });

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.SignatureInvalid);
        Assert.Contains("home domain", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_denies_an_endorsement_addressed_to_another_domain()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        var forThird = Endorsements.Issue(x.ClaimsOf(endorsed) with { Audience = CrossDomainHarness.ThirdDomain }, x.OriginDomain.Signers[KeyUsage.Grant]);

        await x.HandOverAsync(endorsed with { Endorsement = forThird });

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.SignatureInvalid);
        Assert.Contains("audience", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_denies_an_expired_endorsement()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        // Past exp + skew on T's clock, with T's view of both domains fresh again.
        x.Target.Time.Advance(TimeSpan.FromSeconds(CrossDomainHarness.TtlSeconds + 30));
        await x.HeartbeatAsync(x.Target, T);
        await x.HeartbeatAsync(x.Target, TestDomainKeys.Domain);

        await x.HandOverAsync(endorsed);

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains("expired", denied.Detail, StringComparison.Ordinal);
        Assert.Null(denied.LineageIndex);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Theory]
    [InlineData("egress epoch")]
    [InlineData("federation digest")]
    public async Task Target_denies_when_a_message_field_differs_from_what_the_endorsement_signs(string field)
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        var changed = field == "egress epoch"
            ? endorsed with { EgressEpoch = endorsed.EgressEpoch + 1 }
            : endorsed with { FederationPolicyDigest = "sha256:" + new string('e', 64) };

        await x.HandOverAsync(changed);

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.SignatureInvalid);
        Assert.Contains("differ from what its endorsement signs", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_denies_when_the_enclosed_intent_is_not_the_endorsed_one()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        // The agent signed another intent under the same id; O never endorsed it.
        var swapped = agent.Intent(Now(x.Origin), parameters: """{"replicas":300}""", target: T, id: intent.IntentId);

        await x.HandOverAsync(endorsed with { Intent = swapped });

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.SignatureInvalid);
        Assert.Contains("digest", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_denies_a_credential_issued_by_another_domain_than_the_endorser()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        // P (T's peer) issued a credential naming O's agent and key; O endorses the intent carrying it.
        var intent = IntentSignature.Sign(
            agent.Intent(Now(x.Origin), target: T) with { Credential = x.Third.Credential(agent.Subject, agent.PublicKey), Signature = "" },
            agent.PrivateKey);
        var claims = new EndorsementClaims(TestDomainKeys.Domain, agent.Subject, T, intent.IntentId, IntentSignature.Digest(intent),
            CrossDomainHarness.EgressEpoch, "sha256:e9", null, 1, Now(x.Origin), Now(x.Origin).AddSeconds(CrossDomainHarness.TtlSeconds));
        var endorsement = Endorsements.Issue(claims, x.OriginDomain.Signers[KeyUsage.Grant]);

        await x.HandOverAsync(new IntentEndorsed(intent.IntentId, TestDomainKeys.Domain, T, intent, endorsement, CrossDomainHarness.EgressEpoch, ""));

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.CredentialInvalid);
        Assert.Contains(CrossDomainHarness.ThirdDomain, denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_denies_an_intent_whose_signature_does_not_verify()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T) with { Signature = new TestAgent(x.OriginKeys, "other").Intent(Now(x.Origin), target: T).Signature };
        var claims = new EndorsementClaims(TestDomainKeys.Domain, agent.Subject, T, intent.IntentId, IntentSignature.Digest(intent),
            CrossDomainHarness.EgressEpoch, "sha256:e9", null, 1, Now(x.Origin), Now(x.Origin).AddSeconds(CrossDomainHarness.TtlSeconds));

        await x.HandOverAsync(new IntentEndorsed(intent.IntentId, TestDomainKeys.Domain, T, intent,
            Endorsements.Issue(claims, x.OriginDomain.Signers[KeyUsage.Grant]), CrossDomainHarness.EgressEpoch, ""));

        await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.SignatureInvalid);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_detects_a_replay_of_the_intent_id_with_another_digest()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        await x.HandOverAsync(endorsed);
        Assert.IsType<GrantIssued>((await x.TargetAnswersAsync(intent.IntentId))[0]);
        // A second intent under the same id, properly endorsed (as a compromised or buggy origin could).
        var other = agent.Intent(Now(x.Origin), parameters: """{"replicas":300}""", target: T, id: intent.IntentId);
        var claims = x.ClaimsOf(endorsed) with { IntentDigest = IntentSignature.Digest(other) };

        await x.HandOverAsync(endorsed with { Intent = other, Endorsement = Endorsements.Issue(claims, x.OriginDomain.Signers[KeyUsage.Grant]) });

        var answers = await x.TargetAnswersAsync(intent.IntentId, 2);
        var denied = Assert.IsType<GrantDenied>(answers[1]);
        Assert.Equal(GovernanceReason.ReplayDetected, denied.Reason);
        Assert.Single(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_detects_a_nonce_spent_on_another_intent_id()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var endorsed = await EndorseAsync(x, intent);
        await x.HandOverAsync(endorsed);
        Assert.IsType<GrantIssued>((await x.TargetAnswersAsync(intent.IntentId))[0]);
        // The agent's nonce again under a new id, endorsed (O itself refuses that; a compromised or buggy origin might not).
        var again = IntentSignature.Sign(agent.Intent(Now(x.Origin), target: T) with { Nonce = intent.Nonce, Signature = "" }, agent.PrivateKey);
        var claims = x.ClaimsOf(endorsed) with { IntentId = again.IntentId, IntentDigest = IntentSignature.Digest(again) };

        await x.HandOverAsync(new IntentEndorsed(again.IntentId, TestDomainKeys.Domain, T, again,
            Endorsements.Issue(claims, x.OriginDomain.Signers[KeyUsage.Grant]), CrossDomainHarness.EgressEpoch, ""));

        var denied = await x.TargetDeniedAsync(again.IntentId, GovernanceReason.ReplayDetected);
        Assert.Contains(intent.IntentId.ToString(), denied.Detail, StringComparison.Ordinal);
        Assert.Single(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_denies_when_its_view_of_the_origin_is_stale()
    {
        var x = await CrossDomainHarness.StartAsync();
        await using var _ = x;
        await x.Origin.HeartbeatAsync();
        await x.HeartbeatAsync(x.Origin, T);
        await x.HeartbeatAsync(x.Target, T);
        await x.LoadEgressAsync();
        // Old enough that T does not wait for O's heartbeat; O itself still takes it.
        var intent = new TestAgent(x.OriginKeys).Intent(Now(x.Origin).AddSeconds(-25), target: T);
        var endorsed = await EndorseAsync(x, intent);

        await x.HandOverAsync(endorsed);

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.SyncStale);
        Assert.Contains(TestDomainKeys.Domain, denied.Detail, StringComparison.Ordinal);
        Assert.NotNull(denied.LineageIndex);
    }

    [Fact]
    public async Task Target_denies_a_quarantined_agent_of_the_origin()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        await x.Target.Bus.Publish(new GovernanceSigner(() => x.TargetDomainKeys.Signers[KeyUsage.Envelope]).Sign(
            new AgentQuarantined(T, agent.Subject, GovernanceReason.HaltNotAcknowledged, "halt not acknowledged", null, Now(x.Target))));
        await x.Target.EventuallyAsync(() => x.Target.Recorder.ConsumedOf<AgentQuarantined>().Any(), "AgentQuarantined");
        var intent = agent.Intent(Now(x.Origin), target: T);

        await x.HandOverAsync(await EndorseAsync(x, intent));

        await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.Quarantined);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_denies_when_the_origin_decided_under_another_federation_policy()
    {
        var (x, agent) = await ReadyAsync(configureTarget: s => s.AddSingleton<IDecisionPolicy>(new FederatedPolicy("sha256:" + new string('f', 64))));
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);

        await x.HandOverAsync(await EndorseAsync(x, intent));

        var denied = await x.TargetDeniedAsync(intent.IntentId, GovernanceReason.FederationMismatch);
        Assert.NotNull(denied.LineageIndex);
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Target_grants_when_both_decided_under_the_same_federation_policy()
    {
        var federation = "sha256:" + new string('f', 64);
        var (x, agent) = await ReadyAsync(
            configureOrigin: s => s.AddSingleton<IEgressPolicy>(new FederatedPolicy(federation)),
            configureTarget: s => s.AddSingleton<IDecisionPolicy>(new FederatedPolicy(federation)));
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);

        var endorsed = await EndorseAsync(x, intent);
        await x.HandOverAsync(endorsed);

        Assert.Equal(federation, endorsed.FederationPolicyDigest);
        Assert.Equal(federation, x.ClaimsOf(endorsed).FederationDigest);
        Assert.IsType<GrantIssued>((await x.TargetAnswersAsync(intent.IntentId))[0]);
    }

    [Fact]
    public async Task Target_denies_an_intent_of_the_origins_agent_submitted_directly_around_the_endorsement()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Target), target: T);

        await x.Target.SubmitAsync(intent);

        var denied = await x.Target.DeniedAsync(intent.IntentId, GovernanceReason.CredentialInvalid);
        Assert.Contains("endorsement", denied.Detail, StringComparison.Ordinal);
        Assert.Empty(x.Target.Recorder.SentOf<GrantIssued>());
        Assert.Empty(x.Target.Recorder.PublishedOf<GrantIssued>());
    }

    [Fact]
    public async Task Origin_does_not_consume_its_own_outbound_endorsement_and_refuses_a_misaddressed_one()
    {
        var (x, agent) = await ReadyAsync();
        await using var _ = x;
        var intent = agent.Intent(Now(x.Origin), target: T);
        var outbound = await EndorseAsync(x, intent);

        // Positive signal that O's endorsement endpoint had its chance: a copy sent to it afterwards (as a misrouting
        // bridge would; another id, to tell them apart) is taken, and refused to the error queue (addressed to T, nobody
        // here to answer).
        var probe = outbound with { IntentId = Guid.NewGuid() };
        await CrossDomainHarness.SendToEndorsementsAsync(x.Origin, probe);
        await x.Origin.EventuallyAsync(
            () => x.Origin.Recorder.ConsumedOf<IntentEndorsed>().Any(c => c.Message.IntentId == probe.IntentId && c.Fault is not null), "misaddressed endorsement refused at O");
        Assert.Contains("addressed to " + T, x.Origin.Recorder.ConsumedOf<IntentEndorsed>().First(c => c.Fault is not null).Fault!.Message, StringComparison.Ordinal);

        // The published outbound copy never reached O's Authorize, and nothing was decided on it.
        Assert.DoesNotContain(x.Origin.Recorder.ConsumedOf<IntentEndorsed>(), c => c.Message.IntentId == intent.IntentId);
        Assert.Empty(x.Origin.Recorder.PublishedOf<GrantIssued>());
        Assert.Empty(x.Origin.Recorder.PublishedOf<GrantDenied>());
    }

    /// <summary>
    /// Stands in for a policy that decided under a federation policy (its loading arrives with the federation work):
    /// allows deploy with the given federation digest, at the epoch the harness's heartbeats announce.
    /// </summary>
    private sealed class FederatedPolicy(string federationDigest) : IDecisionPolicy, IEgressPolicy
    {
        private readonly TestPolicy _inner = new();

        public long LoadedEpoch => _inner.LoadedEpoch;

        public PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now) =>
            _inner.Decide(intent, credential, now) with { FederationEpoch = 2, FederationDigest = federationDigest };
    }
}
