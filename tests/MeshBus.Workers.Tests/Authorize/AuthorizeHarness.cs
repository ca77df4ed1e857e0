using System.Text.Json;
using MassTransit;
using MassTransit.Testing;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>A domain's keys: root, one signer per usage, a signed key set, a trust config.</summary>
public sealed class TestDomainKeys
{
    public const string Domain = "acme.example/prod";

    public static readonly DateTimeOffset Start = new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero);

    public TestDomainKeys()
    {
        Root = RootKey.Generate(Domain);
        Signers = KeyUsages.All.ToDictionary(u => u, Ed25519Signer.Generate);
        KeySet = new KeySet(Domain, 1, Start.AddDays(-1), Start.AddDays(30),
            Signers.Values.Select(s => new KeySetEntry(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), Start.AddDays(-1), Start.AddDays(90))).ToList(), []);
        Trust = new TrustConfig([Root.VerifierKey], KeySet);
    }

    public RootKey Root { get; }

    public Dictionary<KeyUsage, Ed25519Signer> Signers { get; }

    public KeySet KeySet { get; }

    public TrustConfig Trust { get; }

    public AuthorizeKeys AuthorizeKeys => new(Trust, Signers[KeyUsage.Grant], KeySet.Sequence);
}

/// <summary>An agent with its own key and a credential from the test domain.</summary>
public sealed class TestAgent
{
    public TestAgent(TestDomainKeys keys, string name = "deployer", TimeSpan? credentialLifetime = null, ISigner? credentialSigner = null)
    {
        Subject = TestDomainKeys.Domain + "/agents/" + name;
        PrivateKey = Ed25519Keys.NewPrivateKey();
        PublicKey = Ed25519Keys.PublicKeyOf(PrivateKey);
        Credential = Credentials.Issue(
            new CredentialClaims(TestDomainKeys.Domain, Subject, "c-" + name, Base64Url.Encode(PublicKey),
                new AgentAttributes("sha256:abcd", "k8s", "team-web", ["deployers"]),
                TestDomainKeys.Start.AddMinutes(-1), TestDomainKeys.Start.AddMinutes(-1), TestDomainKeys.Start + (credentialLifetime ?? TimeSpan.FromMinutes(15))),
            credentialSigner ?? keys.Signers[KeyUsage.Credential]);
    }

    public string Subject { get; }

    public byte[] PrivateKey { get; }

    public byte[] PublicKey { get; }

    public string Credential { get; }

    public IntentSubmitted Intent(
        DateTimeOffset issuedAt,
        string action = "deploy",
        string parameters = """{"replicas":3,"image":"web:1.2"}""",
        string? target = null,
        Guid? id = null,
        long maxDurationSeconds = 600)
    {
        var unsigned = new IntentSubmitted(
            id ?? Guid.NewGuid(), TestDomainKeys.Domain, Subject, target ?? TestDomainKeys.Domain, action, "k8s://cluster-a/ns/web",
            JsonDocument.Parse(parameters).RootElement.Clone(), maxDurationSeconds, "n-" + Guid.NewGuid().ToString("N")[..8], issuedAt, Credential, "");
        return IntentSignature.Sign(unsigned, PrivateKey);
    }
}

/// <summary>A stand-in for the policy engine's decision (the engine lands with the policy work): allow-listed actions.</summary>
public sealed class TestPolicy : IDecisionPolicy
{
    public long LoadedEpoch { get; set; } = 7;

    public string Digest { get; set; } = "sha256:" + new string('a', 64);

    public HashSet<string> AllowedActions { get; } = ["deploy"];

    public bool Throws { get; set; }

    public long? LeaseSeconds { get; set; } = 120;

    public PolicyOutcome Decide(IntentSubmitted intent, VerifiedCredential credential, DateTimeOffset now)
    {
        if (Throws)
        {
            throw new InvalidOperationException("condition 'allow-deploy' failed to evaluate");
        }

        return AllowedActions.Contains(intent.Action)
            ? new PolicyOutcome(true, GovernanceReason.None, "allowed by allow-deploy", ["allow-deploy"], LeaseSeconds, LoadedEpoch, Digest)
            : new PolicyOutcome(false, GovernanceReason.NoMatchingRule, "no allow rule matched", [], null, LoadedEpoch, Digest);
    }
}

/// <summary>The Authorize worker on MassTransit's in-memory test harness, with a real SQLite lineage log and a fake clock.</summary>
public sealed class AuthorizeHarness : IAsyncDisposable
{
    /// <summary>The harness's redelivery delays (also configured as MeshBus:RedeliverySeconds, which the worker validates against).</summary>
    private static readonly int[] RedeliveryMilliseconds = [50, 100, 150, 250, 500, 1000, 2000];

    private readonly ServiceProvider _provider;
    private long _heartbeats;

    private AuthorizeHarness(ServiceProvider provider, TestDomainKeys keys, TestPolicy policy, FakeTimeProvider time, string dataDirectory)
    {
        _provider = provider;
        Keys = keys;
        Policy = policy;
        Time = time;
        DataDirectory = dataDirectory;
        Bus = provider.GetRequiredService<ITestHarness>();
    }

    public ITestHarness Bus { get; }

    public BusRecorder Recorder { get; } = new();

    public TestDomainKeys Keys { get; }

    public TestPolicy Policy { get; }

    public FakeTimeProvider Time { get; }

    public string DataDirectory { get; }

    public ILineageLog Lineage => _provider.GetRequiredService<ILineageLog>();

    public static async Task<AuthorizeHarness> StartAsync(
        TestDomainKeys? keys = null,
        Action<IServiceCollection>? configure = null,
        string? dataDirectory = null,
        IDictionary<string, string?>? settings = null)
    {
        keys ??= new TestDomainKeys();
        dataDirectory ??= Path.Combine(Path.GetTempPath(), "meshbus-authz-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDirectory);
        var time = new FakeTimeProvider(TestDomainKeys.Start);
        var policy = new TestPolicy();
        var values = new Dictionary<string, string?>
        {
            ["MeshBus:Domain"] = TestDomainKeys.Domain,
            ["MeshBus:DataDirectory"] = dataDirectory,
            ["MeshBus:RedeliverySeconds:0"] = "0.05",
            ["MeshBus:RedeliverySeconds:1"] = "0.1",
            ["MeshBus:RedeliverySeconds:2"] = "0.15",
            ["MeshBus:RedeliverySeconds:3"] = "0.25",
            ["MeshBus:RedeliverySeconds:4"] = "0.5",
            ["MeshBus:RedeliverySeconds:5"] = "1.0",
            ["MeshBus:RedeliverySeconds:6"] = "2.0",
            ["Authorize:SyncMaxRedeliveries"] = "3",
            ["Authorize:LineageTimeoutMs"] = "2000",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            values[k] = v;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddSingleton<TimeProvider>(time);
        services.AddOptions<MeshBusOptions>().BindConfiguration(MeshBusOptions.Section);
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section);
        services.AddSingleton(keys.AuthorizeKeys);
        services.AddSingleton<IDecisionPolicy>(policy);
        configure?.Invoke(services);

        var worker = new AuthorizeWorker();
        worker.ConfigureServices(services, configuration);
        services.AddMassTransitTestHarness(x =>
        {
            worker.ConfigureBus(x);
            // The hosting defaults, with short redelivery intervals.
            x.AddConfigureEndpointsCallback((context, _, e) =>
            {
                e.UseDelayedRedelivery(r => r.Intervals(RedeliveryMilliseconds));
                e.UseMessageRetry(r => r.Immediate(1));
                e.UseInMemoryOutbox(context);
            });
            x.AddDelayedMessageScheduler();
            x.UsingInMemory((context, cfg) =>
            {
                cfg.UseDelayedMessageScheduler();
                cfg.ConfigureEndpoints(context);
            });
        });
        services.Configure<MassTransitHostOptions>(o => o.WaitUntilStarted = true);
        var provider = services.BuildServiceProvider(true);
        var harness = new AuthorizeHarness(provider, keys, policy, time, dataDirectory);
        harness.Bus.TestTimeout = TimeSpan.FromSeconds(30);
        harness.Bus.TestInactivityTimeout = TimeSpan.FromSeconds(1);
        await harness.Bus.Start();
        harness.Bus.Bus.ConnectSendObserver(harness.Recorder);
        harness.Bus.Bus.ConnectPublishObserver(harness.Recorder);
        harness.Bus.Bus.ConnectConsumeObserver(harness.Recorder);
        return harness;
    }

    /// <summary>Publishes a heartbeat of the domain (as its Sync worker would) and waits until this replica took it.</summary>
    public async Task HeartbeatAsync(long? keySetSequence = null, long? policyEpoch = null, DateTimeOffset? sentAt = null)
    {
        var sequence = Interlocked.Increment(ref _heartbeats);
        await Bus.Bus.Publish(new DomainHeartbeat(TestDomainKeys.Domain, sequence, sentAt ?? Time.GetUtcNow(),
            keySetSequence ?? Keys.KeySet.Sequence, policyEpoch ?? Policy.LoadedEpoch, 0, ""));
        await EventuallyAsync(() => Recorder.ConsumedOf<DomainHeartbeat>().Any(m => m.Message.Sequence == sequence), "heartbeat consumed");
    }

    public Task SubmitAsync(IntentSubmitted intent) => Bus.Bus.Publish(intent);

    /// <summary>Waits (real time, at most 10 s) until <paramref name="condition"/> holds; fails the test otherwise.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for: " + what);
            await Task.Delay(20);
        }
    }

    /// <summary>Every grant, renewal and denial sent for an intent so far, in order.</summary>
    public IReadOnlyList<object> Answers(Guid intentId) =>
        Recorder.Sent.Select(s => s.Message)
            .Where(m => m is GrantIssued g && g.IntentId == intentId
                || m is GrantDenied d && d.IntentId == intentId
                || m is GrantRenewed r && r.IntentId == intentId)
            .ToList();

    /// <summary>Waits (real time, bounded) until <paramref name="count"/> answers for the intent were sent.</summary>
    public async Task<IReadOnlyList<object>> AnswersAsync(Guid intentId, int count = 1, Action? tick = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            var answers = Answers(intentId);
            if (answers.Count >= count)
            {
                return answers;
            }

            tick?.Invoke();
            await Task.Delay(25);
        }

        return Answers(intentId);
    }

    public async Task<object> AnswerAsync(Guid intentId, Action? tick = null)
    {
        var answers = await AnswersAsync(intentId, 1, tick);
        Assert.True(answers.Count > 0, $"no answer for intent {intentId}");
        return answers[0];
    }

    public async Task<GrantDenied> DeniedAsync(Guid intentId, GovernanceReason reason, Action? tick = null)
    {
        var answer = await AnswerAsync(intentId, tick);
        var denied = Assert.IsType<GrantDenied>(answer);
        Assert.Equal(reason, denied.Reason);
        return denied;
    }

    /// <summary>Verifies a grant as the agent would.</summary>
    public VerificationResult<GrantClaims> VerifyGrant(GrantIssued grant, TestAgent agent, string? intentDigest = null) =>
        Grants.Verify(grant.Grant, new GrantVerificationOptions
        {
            Audience = TestDomainKeys.Domain,
            AgentPublicKey = agent.PublicKey,
            KeyResolver = Keys.Trust,
            Now = Time.GetUtcNow(),
            IntentDigest = intentDigest,
        });

    public async ValueTask DisposeAsync()
    {
        await Bus.Stop();
        await _provider.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Failure injection around the real lineage log: throws, or never answers.</summary>
public sealed class FaultyLineageLog(ILineageLog inner) : ILineageLog
{
    public bool Throws { get; set; }

    public bool Stalls { get; set; }

    public int StalledCalls;

    private Task<T> Gate<T>(Func<Task<T>> call)
    {
        if (Throws)
        {
            return Task.FromException<T>(new InvalidOperationException("database connection refused"));
        }

        if (Stalls)
        {
            Interlocked.Increment(ref StalledCalls);
            return new TaskCompletionSource<T>().Task;
        }

        return call();
    }

    public Task<AppendResult> AppendAsync(LineageEntry entry, CancellationToken cancellationToken = default) => Gate(() => inner.AppendAsync(entry, cancellationToken));

    public Task<IReadOnlyList<AppendResult>> AppendBatchAsync(IReadOnlyList<LineageEntry> entries, CancellationToken cancellationToken = default) =>
        Gate(() => inner.AppendBatchAsync(entries, cancellationToken));

    public Task<LineageRecord?> GetByKeyAsync(string key, CancellationToken cancellationToken = default) => inner.GetByKeyAsync(key, cancellationToken);

    public Task<LineageRecord?> GetAsync(long index, CancellationToken cancellationToken = default) => inner.GetAsync(index, cancellationToken);

    public Task<IReadOnlyList<LineageRecord>> FindAsync(string intentId, CancellationToken cancellationToken = default) => inner.FindAsync(intentId, cancellationToken);

    public Task<TreeHead> GetTreeHeadAsync(CancellationToken cancellationToken = default) => inner.GetTreeHeadAsync(cancellationToken);

    public Task<IReadOnlyList<byte[]>> GetInclusionProofAsync(long index, long treeSize, CancellationToken cancellationToken = default) =>
        inner.GetInclusionProofAsync(index, treeSize, cancellationToken);

    public Task<IReadOnlyList<byte[]>> GetConsistencyProofAsync(long oldSize, long newSize, CancellationToken cancellationToken = default) =>
        inner.GetConsistencyProofAsync(oldSize, newSize, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
