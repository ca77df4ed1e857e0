using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Consumers;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>A domain's key material for the cross-domain tests: root, one signer per usage, its signed key set.</summary>
public sealed class FederatedDomain
{
    private FederatedDomain(string name, RootKey root, IReadOnlyDictionary<KeyUsage, Ed25519Signer> signers, KeySet keySet, DateTimeOffset start)
    {
        Start = start;
        Name = name;
        Root = root;
        Signers = signers;
        KeySet = keySet;
        SignedKeySet = keySet.Sign(root);
    }

    public string Name { get; }

    /// <summary>The epoch its key set and credentials are valid around.</summary>
    public DateTimeOffset Start { get; }

    public RootKey Root { get; }

    public IReadOnlyDictionary<KeyUsage, Ed25519Signer> Signers { get; }

    public KeySet KeySet { get; }

    public string SignedKeySet { get; }

    /// <summary>The single-domain tests' domain (acme), so <see cref="TestAgent"/> works for it.</summary>
    public static FederatedDomain Of(TestDomainKeys keys) => new(TestDomainKeys.Domain, keys.Root, keys.Signers, keys.KeySet, keys.Start);

    public static FederatedDomain Create(string name)
    {
        var signers = KeyUsages.All.ToDictionary(u => u, Ed25519Signer.Generate);
        var start = TestDomainKeys.WallClockSecond();
        var keySet = new KeySet(name, 1, start.AddDays(-1), start.AddDays(30),
            signers.Values.Select(s => new KeySetEntry(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), start.AddDays(-1), start.AddDays(90))).ToList(), []);
        return new FederatedDomain(name, RootKey.Generate(name), signers, keySet, start);
    }

    /// <summary>
    /// This domain's trust config with <paramref name="peers"/> pinned and their key sets accepted (as Sync would), and
    /// <paramref name="pinnedOnly"/> pinned whose key sets have not arrived.
    /// </summary>
    public TrustConfig TrustWith(FederatedDomain[] peers, FederatedDomain[]? pinnedOnly = null)
    {
        var trust = new TrustConfig([Root.VerifierKey, .. peers.Concat(pinnedOnly ?? []).Select(p => p.Root.VerifierKey)], KeySet);
        foreach (var peer in peers)
        {
            var accepted = trust.AcceptKeySet(peer.SignedKeySet, Start);
            Assert.True(accepted.IsValid, accepted.Detail);
        }

        return trust;
    }

    /// <summary>A credential this domain issues, for any subject and key (a peer may issue one naming another's agent).</summary>
    public string Credential(string subject, byte[] agentPublicKey) =>
        Credentials.Issue(
            new CredentialClaims(Name, subject, "c-" + Guid.NewGuid().ToString("N")[..8], Base64Url.Encode(agentPublicKey),
                new AgentAttributes("sha256:abcd", "k8s", "team-web", ["deployers"]),
                Start.AddMinutes(-1), Start.AddMinutes(-1), Start.AddMinutes(15)),
            Signers[KeyUsage.Credential]);
}

/// <summary>What a test adds to one side of <see cref="CrossDomainHarness"/> to host a bridge there.</summary>
/// <param name="Worker">The bridge's worker (its relay consumers).</param>
/// <param name="Configure">Its services (keys, link).</param>
public sealed record BridgeSide(MeshBus.Hosting.IMeshBusWorker Worker, Action<IServiceCollection> Configure);

/// <summary>A key that claims another usage than it has: forges a token that a strict verifier must refuse.</summary>
public sealed class RelabelledSigner(ISigner inner, KeyUsage usage) : ISigner
{
    public string KeyId => inner.KeyId;

    public KeyUsage Usage => usage;

    public byte[] PublicKey => inner.PublicKey;

    public byte[] Sign(ReadOnlySpan<byte> data) => inner.Sign(data);
}

/// <summary>
/// Two Authorize workers of different domains on two in-memory harnesses, each other's peers: the origin O (acme, the
/// agent's home) and the target T (globex). A third domain P (initech) is T's peer but unknown to O. There is no bridge:
/// <see cref="HandOverAsync"/> hands the origin's <see cref="IntentEndorsed"/> to the target, as the bridge will.
/// </summary>
public sealed class CrossDomainHarness : IAsyncDisposable
{
    public const string TargetDomain = "globex.example/prod";
    public const string ThirdDomain = "initech.example/prod";
    public const long EgressEpoch = 3;
    public const long TtlSeconds = 60;

    private long _heartbeats = 1000;

    private CrossDomainHarness(TestDomainKeys originKeys, FederatedDomain origin, FederatedDomain target, FederatedDomain third,
        TrustConfig originTrust, TrustConfig targetTrust, AuthorizeHarness o, AuthorizeHarness t)
    {
        OriginKeys = originKeys;
        OriginDomain = origin;
        TargetDomainKeys = target;
        Third = third;
        OriginTrust = originTrust;
        TargetTrust = targetTrust;
        Origin = o;
        Target = t;
    }

    public TestDomainKeys OriginKeys { get; }

    public FederatedDomain OriginDomain { get; }

    public FederatedDomain TargetDomainKeys { get; }

    public FederatedDomain Third { get; }

    /// <summary>O's trust: O itself and T.</summary>
    public TrustConfig OriginTrust { get; }

    /// <summary>T's trust: T itself, O and P.</summary>
    public TrustConfig TargetTrust { get; }

    public AuthorizeHarness Origin { get; }

    public AuthorizeHarness Target { get; }

    public static async Task<CrossDomainHarness> StartAsync(
        Action<IServiceCollection>? configureOrigin = null,
        Action<IServiceCollection>? configureTarget = null,
        TestDomainKeys? originKeys = null,
        IDictionary<string, string?>? originSettings = null,
        FederatedDomain? pinnedAtTargetWithoutKeySet = null,
        Func<FederatedDomain, TrustConfig, string[], BridgeSide>? bridge = null)
    {
        originKeys ??= new TestDomainKeys();
        var origin = FederatedDomain.Of(originKeys);
        var target = FederatedDomain.Create(TargetDomain);
        var third = FederatedDomain.Create(ThirdDomain);
        var originTrust = origin.TrustWith([target]);
        var targetTrust = target.TrustWith([origin, third], pinnedAtTargetWithoutKeySet is null ? null : [pinnedAtTargetWithoutKeySet]);

        var originBridge = bridge?.Invoke(origin, originTrust, [TargetDomain]);
        var targetBridge = bridge?.Invoke(target, targetTrust, [TestDomainKeys.Domain, ThirdDomain]);
        var o = await AuthorizeHarness.StartAsync(originKeys,
            configure: s =>
            {
                s.AddSingleton(new AuthorizeKeys(originTrust, origin.Signers[KeyUsage.Grant], origin.KeySet.Sequence) { OwnRoot = origin.Root.VerifierKey });
                originBridge?.Configure(s);
                configureOrigin?.Invoke(s);
            },
            settings: new Dictionary<string, string?>(originSettings ?? new Dictionary<string, string?>())
            {
                ["Authorize:EndorsementTtlSeconds"] = TtlSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Federation:Link"] = originBridge is null ? "None" : "InProcess",
            },
            alsoHost: originBridge is null ? null : [originBridge.Worker]);
        try
        {
            // The target's harness is the same worker under another domain name, keys and trust config.
            var t = await AuthorizeHarness.StartAsync(
                configure: s =>
                {
                    s.AddSingleton(new AuthorizeKeys(targetTrust, target.Signers[KeyUsage.Grant], target.KeySet.Sequence) { OwnRoot = target.Root.VerifierKey });
                    targetBridge?.Configure(s);
                    configureTarget?.Invoke(s);
                },
                settings: new Dictionary<string, string?> { ["MeshBus:Domain"] = TargetDomain, ["Federation:Link"] = targetBridge is null ? "None" : "InProcess" },
                alsoHost: targetBridge is null ? null : [targetBridge.Worker]);
            return new CrossDomainHarness(originKeys, origin, target, third, originTrust, targetTrust, o, t);
        }
        catch
        {
            await o.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every domain each side needs is fresh: O and T on O's bus, T and O on T's bus.</summary>
    public async Task AllFreshAsync()
    {
        await Origin.HeartbeatAsync();
        await HeartbeatAsync(Origin, TargetDomain);
        await HeartbeatAsync(Target, TargetDomain);
        await HeartbeatAsync(Target, TestDomainKeys.Domain);
    }

    /// <summary>
    /// A heartbeat of <paramref name="domain"/> as <paramref name="on"/> learns it: its own domain's is published on its
    /// bus (its Sync's) and waited for; a peer's is recorded in the per-peer sync state, as its Sync records a verified
    /// heartbeat that crossed the bridge (tests/…/Sync covers that intake).
    /// </summary>
    public async Task HeartbeatAsync(AuthorizeHarness on, string domain, long keySetSequence = 1, DateTimeOffset? sentAt = null, string federationDigest = "")
    {
        var sequence = Interlocked.Increment(ref _heartbeats);
        if (domain != on.Services.GetRequiredService<IOptions<MeshBusOptions>>().Value.Domain)
        {
            await on.Services.GetRequiredService<IPeerSyncStore>().RecordHeartbeatAsync(
                new PeerHeartbeatRecord(domain, sentAt ?? on.Time.GetUtcNow(), sequence, keySetSequence, on.Policy.LoadedEpoch, 0, federationDigest), CancellationToken.None);
            return;
        }

        var signer = new[] { OriginDomain, TargetDomainKeys, Third }.FirstOrDefault(d => d.Name == domain)?.Signers[KeyUsage.Envelope]
            ?? Ed25519Signer.Generate(KeyUsage.Envelope);
        await on.Bus.Publish(new GovernanceSigner(() => signer).Sign(
            new DomainHeartbeat(domain, sequence, sentAt ?? on.Time.GetUtcNow(), keySetSequence, on.Policy.LoadedEpoch, 0, federationDigest)));
        await on.EventuallyAsync(
            () => on.Recorder.ConsumedOf<DomainHeartbeat>().Any(m => m.Message.Sequence == sequence && m.Message.Domain == domain), "heartbeat of " + domain);
    }

    /// <summary>A signed egress bundle of O: agents may deploy in T; nobody deletes anything elsewhere.</summary>
    public string EgressBundle(long epoch = EgressEpoch) => EgressBundle(OriginDomain.Signers[KeyUsage.Grant], epoch);

    /// <summary>The egress bundle signed with <paramref name="signer"/> (a key of O's key set, or not).</summary>
    public static string EgressBundle(ISigner signer, long epoch = EgressEpoch) => PolicyBundleSigning.Sign($$"""
        {
          "format": "meshbus-policy/v1",
          "scope": "egress",
          "domain": "{{TestDomainKeys.Domain}}",
          "epoch": {{epoch}},
          "rules": [
            { "id": "deploy-to-globex", "effect": "allow", "match": { "actions": ["deploy", "delete"], "resources": ["**"] },
              "condition": "target.domain == '{{TargetDomain}}'" },
            { "id": "no-remote-delete", "effect": "deny", "match": { "actions": ["delete"], "resources": ["**"] } }
          ]
        }
        """, signer);

    /// <summary>Publishes O's egress policy on O's bus, as its Sync would, and waits until it was loaded.</summary>
    public async Task LoadEgressAsync(string? bundle = null)
    {
        bundle ??= EgressBundle();
        var parsed = PolicyBundle.Parse(bundle);
        await Origin.Bus.Publish(new PolicyPublished(TestDomainKeys.Domain, PolicyScope.Egress, parsed.Epoch, parsed.Digest, bundle, Origin.Time.GetUtcNow()));
        await Origin.EventuallyAsync(() => Origin.Recorder.ConsumedOf<PolicyPublished>().Any(m => m.Message.Digest == parsed.Digest), "egress policy consumed");
        var (_, fault) = Origin.Recorder.ConsumedOf<PolicyPublished>().First(m => m.Message.Digest == parsed.Digest);
        Assert.Null(fault);
    }

    /// <summary>Waits for the origin's endorsement of an intent (the <paramref name="count"/>-th one).</summary>
    public async Task<IntentEndorsed> EndorsedAsync(Guid intentId, int count = 1)
    {
        await Origin.EventuallyAsync(() => Endorsements(intentId).Count >= count, "IntentEndorsed published by the origin");
        return Endorsements(intentId)[count - 1];
    }

    public IReadOnlyList<IntentEndorsed> Endorsements(Guid intentId) =>
        Origin.Recorder.PublishedOf<IntentEndorsed>().Where(e => e.IntentId == intentId).ToList();

    /// <summary>Hands an endorsement to the target, as the bridge will.</summary>
    public Task HandOverAsync(IntentEndorsed endorsed) => SendToEndorsementsAsync(Target, endorsed);

    /// <summary>Sends an endorsement to <paramref name="on"/>'s endorsement queue, as the bridge delivers one.</summary>
    public static async Task SendToEndorsementsAsync(AuthorizeHarness on, IntentEndorsed endorsed)
    {
        var address = IntentEndorsedConsumerDefinition.Address(
            on.Services.GetRequiredService<IOptions<AuthorizeOptions>>().Value, on.Services.GetService<MeshBusEndpointNameFormatter>());
        var endpoint = await on.Bus.GetSendEndpoint(address);
        await endpoint.Send(endorsed);
    }

    /// <summary>The grants and denials the target published for an intent (its answers travel back over the bridge).</summary>
    public IReadOnlyList<object> TargetAnswers(Guid intentId) =>
        Target.Recorder.PublishedOf<object>()
            .Where(m => m is GrantIssued g && g.IntentId == intentId || m is GrantDenied d && d.IntentId == intentId)
            .ToList();

    public async Task<IReadOnlyList<object>> TargetAnswersAsync(Guid intentId, int count = 1)
    {
        await Target.EventuallyAsync(() => TargetAnswers(intentId).Count >= count, $"{count} answer(s) of the target");
        return TargetAnswers(intentId);
    }

    public async Task<GrantDenied> TargetDeniedAsync(Guid intentId, GovernanceReason reason)
    {
        var denied = Assert.IsType<GrantDenied>((await TargetAnswersAsync(intentId))[0]);
        Assert.True(reason == denied.Reason, $"expected {reason}, got {denied.Reason}: {denied.Detail}");
        return denied;
    }

    /// <summary>Waits until the target sent the endorsement to its error queue (no origin to answer); returns the fault.</summary>
    public async Task<Fault<IntentEndorsed>> TargetFaultAsync(Guid intentId)
    {
        await Target.EventuallyAsync(
            () => Target.Recorder.PublishedOf<Fault<IntentEndorsed>>().Any(f => f.Message.IntentId == intentId), "Fault<IntentEndorsed>");
        return Target.Recorder.PublishedOf<Fault<IntentEndorsed>>().First(f => f.Message.IntentId == intentId);
    }

    /// <summary>The claims of the origin's endorsement, to re-sign variations of it.</summary>
    public EndorsementClaims ClaimsOf(IntentEndorsed endorsed)
    {
        var result = MeshBus.Trust.Endorsements.VerifySignature(endorsed.Endorsement, TargetTrust, Target.Time.GetUtcNow());
        Assert.True(result.IsValid, result.Detail);
        return result.Value!;
    }

    /// <summary>Verifies a grant as the agent at home would: T's key through O's trust config, bound to the agent's key.</summary>
    public VerificationResult<GrantClaims> VerifyGrant(GrantIssued grant, TestAgent agent, IntentSubmitted intent) =>
        Grants.Verify(grant.Grant, new GrantVerificationOptions
        {
            Audience = TargetDomain,
            AgentPublicKey = agent.PublicKey,
            KeyResolver = OriginTrust,
            Now = Target.Time.GetUtcNow(),
            IntentDigest = IntentSignature.Digest(intent),
        });

    public async ValueTask DisposeAsync()
    {
        await Target.DisposeAsync();
        await Origin.DisposeAsync();
    }
}
