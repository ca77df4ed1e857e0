using System.Text.Json;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Persistence;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>A domain's keys: root, one signer per usage, a signed key set, a trust config.</summary>
public sealed class TestDomainKeys
{
    public const string Domain = "acme.example/prod";

    /// <summary>
    /// The test's epoch: the wall clock when the keys were made, to the second. Not a fixed date, because on RabbitMQ
    /// the Quartz scheduler behind redelivery runs on the container's clock, which must stay near the wall clock.
    /// </summary>
    public DateTimeOffset Start { get; } = WallClockSecond();

    public TestDomainKeys()
    {
        Root = RootKey.Generate(Domain);
        Signers = KeyUsages.All.ToDictionary(u => u, Ed25519Signer.Generate);
        KeySet = new KeySet(Domain, 1, Start.AddDays(-1), Start.AddDays(30),
            Signers.Values.Select(s => new KeySetEntry(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), Start.AddDays(-1), Start.AddDays(90))).ToList(), []);
        Trust = new TrustConfig([Root.VerifierKey], KeySet);
    }

    /// <summary>The wall clock, to the second.</summary>
    public static DateTimeOffset WallClockSecond() => DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());

    public RootKey Root { get; }

    public Dictionary<KeyUsage, Ed25519Signer> Signers { get; }

    public KeySet KeySet { get; }

    public TrustConfig Trust { get; }

    public AuthorizeKeys AuthorizeKeys => new(Trust, Signers[KeyUsage.Grant], KeySet.Sequence) { OwnRoot = Root.VerifierKey };

    /// <summary>Signs governance statements as the domain's Sync and Enforce do (the envelope key).</summary>
    public GovernanceSigner Governance => new(() => Signers[KeyUsage.Envelope]);
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
                keys.Start.AddMinutes(-1), keys.Start.AddMinutes(-1), keys.Start + (credentialLifetime ?? TimeSpan.FromMinutes(15))),
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

/// <summary>The decisions' clock, moved by the tests.</summary>
public abstract class TestClock : TimeProvider
{
    /// <summary>Moves the clock forward.</summary>
    public abstract void Advance(TimeSpan by);
}

/// <summary>Frozen at the test's epoch until advanced (timers fire when advanced past them).</summary>
public sealed class FrozenClock(DateTimeOffset start) : TestClock
{
    private readonly FakeTimeProvider _fake = new(start);

    public override DateTimeOffset GetUtcNow() => _fake.GetUtcNow();

    public override long GetTimestamp() => _fake.GetTimestamp();

    public override long TimestampFrequency => _fake.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        _fake.CreateTimer(callback, state, dueTime, period);

    public override void Advance(TimeSpan by) => _fake.Advance(by);
}

/// <summary>
/// The wall clock plus what the test advanced; real timers. For RabbitMQ: the Quartz scheduler behind redelivery runs
/// on the container's clock, so it must run, and near the wall clock its triggers are computed from.
/// </summary>
public sealed class RunningClock : TestClock
{
    private long _advancedTicks;

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _advancedTicks));

    public override void Advance(TimeSpan by) => Interlocked.Add(ref _advancedTicks, by.Ticks);
}

/// <summary>Real servers for <see cref="AuthorizeHarness"/>: RabbitMQ, and a PostgreSQL database of the test's own.</summary>
/// <param name="AmqpUri">The broker (each harness isolates itself with an entity prefix of its own).</param>
/// <param name="PostgresConnectionString">The database shared by the harnesses of one test (lineage, quarantine, nonces, schedules).</param>
public sealed record RealServers(Uri AmqpUri, string PostgresConnectionString);

/// <summary>
/// The Authorize worker composed by the real hosting (<c>AddMeshBus</c>: retry, redelivery, outbox, scheduler), with a
/// fake clock for its decisions: on the in-memory transport with SQLite, or on RabbitMQ with PostgreSQL (the same
/// tests run on both).
/// </summary>
public sealed class AuthorizeHarness : IAsyncDisposable
{
    /// <summary>The harness's redelivery delays in seconds (MeshBus:RedeliverySeconds).</summary>
    public static readonly double[] RedeliverySeconds = [0.05, 0.1, 0.25, 0.5, 1];

    private readonly ServiceProvider _provider;
    private readonly List<IHostedService> _hosted = [];
    private readonly RealServers? _servers;
    private readonly string _prefix;
    private long _heartbeats;

    private AuthorizeHarness(ServiceProvider provider, TestDomainKeys keys, TestPolicy policy, TestClock time, string dataDirectory, RealServers? servers, string prefix)
    {
        _provider = provider;
        _servers = servers;
        _prefix = prefix;
        Keys = keys;
        Policy = policy;
        Time = time;
        DataDirectory = dataDirectory;
        Bus = provider.GetRequiredService<IBus>();
    }

    public IBus Bus { get; }

    /// <summary>The harness's container (services a test inspects, e.g. a hosted bridge).</summary>
    public IServiceProvider Services => _provider;

    public BusRecorder Recorder { get; } = new();

    public TestDomainKeys Keys { get; }

    public TestPolicy Policy { get; }

    public TestClock Time { get; }

    public string DataDirectory { get; }

    /// <summary>How long the waits of this harness last: scheduled redeliveries on RabbitMQ go through Quartz (1 s idle wait).</summary>
    public TimeSpan WaitBound => _servers is null ? TimeSpan.FromSeconds(10) : TimeSpan.FromSeconds(30);

    public ILineageLog Lineage => _provider.GetRequiredService<ILineageLog>();

    public static async Task<AuthorizeHarness> StartAsync(
        TestDomainKeys? keys = null,
        Action<IServiceCollection>? configure = null,
        string? dataDirectory = null,
        IDictionary<string, string?>? settings = null,
        RealServers? servers = null,
        IReadOnlyList<IMeshBusWorker>? alsoHost = null)
    {
        keys ??= new TestDomainKeys();
        dataDirectory ??= Path.Combine(Path.GetTempPath(), "meshbus-authz-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDirectory);
        TestClock time = servers is null ? new FrozenClock(keys.Start) : new RunningClock();
        var policy = new TestPolicy();
        var prefix = servers is null ? "" : "ta" + Guid.NewGuid().ToString("N")[..8] + "-";
        var values = new Dictionary<string, string?>
        {
            ["MeshBus:Domain"] = TestDomainKeys.Domain,
            ["MeshBus:DataDirectory"] = dataDirectory,
            ["MeshBus:ImmediateRetries"] = "1",
            ["Authorize:SyncMaxRedeliveries"] = "3",
            ["Authorize:LineageTimeoutMs"] = "2000",
        };
        for (var i = 0; i < RedeliverySeconds.Length; i++)
        {
            values[$"MeshBus:RedeliverySeconds:{i}"] = RedeliverySeconds[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (servers is not null)
        {
            var userInfo = servers.AmqpUri.UserInfo.Split(':');
            var vhost = servers.AmqpUri.AbsolutePath.TrimStart('/');
            values["MeshBus:Transport"] = "RabbitMq";
            values["RabbitMqTransport:Host"] = servers.AmqpUri.Host;
            values["RabbitMqTransport:Port"] = servers.AmqpUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            values["RabbitMqTransport:VirtualHost"] = vhost.Length == 0 ? "/" : Uri.UnescapeDataString(vhost);
            values["RabbitMqTransport:Username"] = Uri.UnescapeDataString(userInfo[0]);
            values["RabbitMqTransport:Password"] = Uri.UnescapeDataString(userInfo.ElementAtOrDefault(1) ?? "");
            values["RabbitMqTransport:EntityPrefix"] = prefix;
            values["Storage:Provider"] = "Postgres";
            values["Storage:ConnectionString"] = servers.PostgresConnectionString;
        }

        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            values[k] = v;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        // The hosting's start report waits on the host's lifetime; this harness is a bare service provider.
        services.AddSingleton<Microsoft.Extensions.Hosting.IHostApplicationLifetime, Microsoft.Extensions.Hosting.Internal.ApplicationLifetime>();
        services.AddSingleton<TimeProvider>(time);
        services.AddSingleton(keys.AuthorizeKeys);
        services.AddSingleton<IDecisionPolicy>(policy);
        configure?.Invoke(services);
        services.AddMeshBus(configuration, [new AuthorizeWorker(), .. alsoHost ?? []]);
        services.Configure<MassTransitHostOptions>(o => o.WaitUntilStarted = true);
        var provider = services.BuildServiceProvider(true);
        var harness = new AuthorizeHarness(provider, keys, policy, time, dataDirectory, servers, prefix);
        MeshBusHost.ValidateOptions(provider);
        harness.Bus.ConnectSendObserver(harness.Recorder);
        harness.Bus.ConnectPublishObserver(harness.Recorder);
        harness.Bus.ConnectConsumeObserver(harness.Recorder);
        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
            harness._hosted.Add(hosted);
        }

        return harness;
    }

    /// <summary>The lineage log the worker would open itself (SQLite in its data directory, or the test's PostgreSQL database).</summary>
    public static ILineageLog OpenLineage(IServiceProvider services)
    {
        var storage = services.GetRequiredService<IOptions<StorageOptions>>().Value;
        return storage.Provider == StorageProvider.Postgres
            ? LineageLogs.OpenPostgres(storage.ConnectionString!)
            : LineageLogs.OpenSqlite(Path.Combine(Path.GetTempPath(), "meshbus-authz-" + Guid.NewGuid().ToString("N") + ".db"));
    }

    /// <summary>Publishes a heartbeat of the domain (as its Sync worker would) and waits until this replica took it.</summary>
    public async Task HeartbeatAsync(long? keySetSequence = null, long? policyEpoch = null, DateTimeOffset? sentAt = null)
    {
        var sequence = Interlocked.Increment(ref _heartbeats);
        await Bus.Publish(Keys.Governance.Sign(new DomainHeartbeat(TestDomainKeys.Domain, sequence, sentAt ?? Time.GetUtcNow(),
            keySetSequence ?? Keys.KeySet.Sequence, policyEpoch ?? Policy.LoadedEpoch, 0, "")));
        await EventuallyAsync(() => Recorder.ConsumedOf<DomainHeartbeat>().Any(m => m.Message.Sequence == sequence), "heartbeat consumed");
    }

    /// <summary>Sends an intent to the agent ingress, as an agent does.</summary>
    public async Task SubmitAsync(IntentSubmitted intent) =>
        await (await Bus.GetSendEndpoint(AgentIngress.IntentsAddress(_prefix))).Send(intent);

    /// <summary>Waits (real time, at most <see cref="WaitBound"/>) until <paramref name="condition"/> holds; fails the test otherwise.</summary>
    public async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + WaitBound;
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
        var deadline = DateTime.UtcNow + WaitBound;
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
        foreach (var hosted in Enumerable.Reverse(_hosted))
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _provider.DisposeAsync();
        if (_servers is not null)
        {
            await CleanBrokerAsync();
        }

        try
        {
            Directory.Delete(DataDirectory, true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Removes this harness's prefixed queues and exchanges, and the agent queues it sent to, from the shared broker.</summary>
    private async Task CleanBrokerAsync()
    {
        var formatter = new MeshBusEndpointNameFormatter(_prefix);
        var queues = new List<string> { _prefix + "authorize-intents", _prefix + AgentIngress.IntentsExchange, _prefix + "authorize-renewals", _prefix + "authorize-endorsements", _prefix + "authorize-quarantine", _prefix + "meshbus-scheduler" };
        var consumerName = typeof(IEndpointNameFormatter).GetMethod(nameof(IEndpointNameFormatter.Consumer))!;
        queues.AddRange(typeof(AuthorizeWorker).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericTypeDefinition: false } && typeof(IConsumer).IsAssignableFrom(t))
            .Select(t => (string)consumerName.MakeGenericMethod(t).Invoke(formatter, null)!));
        queues.AddRange(Recorder.Sent.Select(s => s.Destination?.AbsolutePath.Split('/').LastOrDefault()).OfType<string>().Where(n => n.StartsWith("agent.", StringComparison.Ordinal)));
        var exchanges = typeof(IntentSubmitted).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsPublic: true, Namespace: not null })
            .SelectMany(t => new[] { $"{_prefix}{t.Namespace}:{t.Name}", $"{_prefix}MassTransit:Fault--{t.Namespace}:{t.Name}--" });
        await RabbitMqCleanup.TryDeleteAsync(_servers!.AmqpUri, queues.Distinct(), exchanges);
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
