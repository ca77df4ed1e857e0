using MassTransit;
using MassTransit.InMemoryTransport;
using MassTransit.Transports;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Persistence;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Enforce;
using MeshBus.Workers.Enforce.Lifecycle;
using MeshBus.Workers.Lineage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>
/// One domain on the in-memory transport: the Enforce and Lineage workers with their real SQLite stores, a domain key
/// directory made by the trust library, a <see cref="FakeTimeProvider"/> shared by the workers and the agents, and a
/// <see cref="StandInAuthorizer"/> answering intents with real signed grants.
/// </summary>
internal sealed class SkeletonHarness : IAsyncDisposable
{
    public const string Domain = "acme.example/prod";

    private readonly ServiceProvider _provider;
    private readonly List<IHostedService> _hosted = [];
    private readonly List<MeshBusAgent> _agents = [];

    private SkeletonHarness(string dataDirectory, DomainKeys keys, FakeTimeProvider clock, ServiceProvider provider)
    {
        DataDirectory = dataDirectory;
        Keys = keys;
        Clock = clock;
        _provider = provider;
    }

    public string DataDirectory { get; }

    public DomainKeys Keys { get; }

    public FakeTimeProvider Clock { get; }

    private readonly ConsumedMessages _consumed = new();

    private readonly ReceivesInFlight _receiving = new();

    public IBus Bus => _provider.GetRequiredService<IBus>();

    public ILineageLog Lineage => _provider.GetRequiredService<ILineageLog>();

    public StandInAuthorizer Authorizer => _provider.GetRequiredService<StandInAuthorizer>();

    public static async Task<SkeletonHarness> StartAsync(IDictionary<string, string?>? settings = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "meshbus-skel-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var keys = DomainAdministration.Initialize(Path.Combine(dir, "keys"), Domain, clock.GetUtcNow());
        keys = DomainKeys.Load(keys.DirectoryPath, KeyUsage.Grant, KeyUsage.Credential);
        var config = new Dictionary<string, string?>
        {
            ["MeshBus:Domain"] = Domain,
            ["MeshBus:Transport"] = "InMemory",
            ["MeshBus:DataDirectory"] = dir,
            ["MeshBus:KeyDirectory"] = keys.DirectoryPath,
            ["MeshBus:ImmediateRetries"] = "2",
            ["MeshBus:RedeliverySeconds:0"] = "1",
            ["Authorize:SyncMaxRedeliveries"] = "1",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            config[k] = v;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(config).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        // The hosting's start report waits on the host's lifetime; this harness is a bare service provider.
        services.AddSingleton<Microsoft.Extensions.Hosting.IHostApplicationLifetime, Microsoft.Extensions.Hosting.Internal.ApplicationLifetime>();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddSingleton<TimeProvider>(clock);
        services.AddSingleton(keys);
        services.AddSingleton<StandInAuthorizer>();
        var store = new SqlStoreOptions { Provider = StorageProvider.Sqlite, ConnectionString = $"Data Source={Path.Combine(dir, "enforce.db")}" };
        services.AddMeshBus(configuration, [new EnforceWorker(store), new LineageWorker()], x => x.AddConsumer<StandInAuthorizerConsumer, StandInAuthorizerConsumerDefinition>());
        // Every receive endpoint is consuming before a test publishes: otherwise, on a loaded machine, an intent could be
        // published before the stand-in's endpoint started and no decision would come (seen once in CI as a 20 s timeout).
        services.Configure<MassTransitHostOptions>(o => o.WaitUntilStarted = true);
        var provider = services.BuildServiceProvider();
        var harness = new SkeletonHarness(dir, keys, clock, provider);
        provider.GetRequiredService<IBus>().ConnectConsumeObserver(harness._consumed);
        provider.GetRequiredService<IBus>().ConnectReceiveObserver(harness._receiving);
        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
            harness._hosted.Add(hosted);
        }

        return harness;
    }

    /// <summary>An agent of the domain with a fresh key and a credential from the domain's credential key.</summary>
    public async Task<MeshBusAgent> AgentAsync(string name = "deployer", TimeSpan? skew = null, TimeProvider? clock = null)
    {
        var subject = $"{Domain}/agents/{name}-{Guid.NewGuid().ToString("N")[..6]}";
        var privateKey = Ed25519Keys.NewPrivateKey();
        var now = Clock.GetUtcNow();
        var credential = Credentials.Issue(
            new CredentialClaims(Domain, subject, "c-" + Guid.NewGuid().ToString("N")[..8], Base64Url.Encode(Ed25519Keys.PublicKeyOf(privateKey)),
                new AgentAttributes("sha256:0123", "test", "team-web", ["deployers"]), now, now, now.AddHours(1)),
            Keys.Signer(KeyUsage.Credential, now));
        var agent = await MeshBusAgent.ConnectAsync(Bus, new MeshBusAgentOptions
        {
            Subject = subject,
            HomeDomain = Domain,
            PrivateKey = privateKey,
            Credential = credential,
            KeyResolver = Keys.LoadTrust(),
            TimeProvider = clock ?? Clock,
            Skew = skew ?? TimeSpan.FromSeconds(2),
            HeartbeatInterval = TimeSpan.FromSeconds(10),
            DecisionTimeout = TimeSpan.FromSeconds(20),
        });
        _agents.Add(agent);
        return agent;
    }

    /// <summary>
    /// Waits until the lineage recorder has taken a message of type <typeparamref name="T"/> matching
    /// <paramref name="match"/> (successfully or not): the positive signal before asserting that it changed nothing.
    /// </summary>
    public Task LineageConsumedAsync<T>(Func<T, bool> match)
        where T : class =>
        EventuallyAsync(
            () => Task.FromResult(_consumed.Taken.Any(c => c.Endpoint.EndsWith("lineage-recorder", StringComparison.Ordinal) && c.Message is T m && match(m))),
            taken => taken, $"the lineage recorder to take the {typeof(T).Name}");

    /// <summary>Whether the lineage recorder faulted on a message of type <typeparamref name="T"/> (it went to the error queue).</summary>
    public bool RecorderFaulted<T>()
        where T : class =>
        _consumed.Faulted.Any(c => c.Endpoint.EndsWith("lineage-recorder", StringComparison.Ordinal) && c.Message is T);

    /// <summary>Waits until the endpoint whose queue name ends with <paramref name="endpoint"/> took a matching <typeparamref name="T"/> (successfully or not).</summary>
    public Task EndpointConsumedAsync<T>(string endpoint, Func<T, bool> match)
        where T : class =>
        EventuallyAsync(
            () => Task.FromResult(_consumed.Taken.Any(c => c.Endpoint.EndsWith(endpoint, StringComparison.Ordinal) && c.Message is T m && match(m))),
            taken => taken, $"{endpoint} to take the {typeof(T).Name}");

    /// <summary>Whether any consumer faulted on a message of type <typeparamref name="T"/> matching <paramref name="match"/>.</summary>
    public bool Faulted<T>(Func<T, bool> match)
        where T : class =>
        _consumed.Faulted.Any(c => c.Message is T m && match(m));

    public Task<IntentLifecycleState?> SagaAsync(Guid intentId) =>
        _provider.GetRequiredService<ISagaStateReader>().LoadAsync<IntentLifecycleState>(intentId);

    /// <summary>Moves the agents' and workers' clock and the transport's scheduler together.</summary>
    public async Task AdvanceAsync(TimeSpan by)
    {
        // A saga's new state is visible a moment before its outbox hands the schedule to the delay provider: the
        // receive that changed it ends only after the outbox delivered, so wait until no endpoint is mid-receive.
        await EventuallyAsync(() => Task.FromResult(_receiving.Count), n => n <= 0, "every endpoint to finish the messages it took");
        Clock.Advance(by);
        if (_provider.GetService<IBusInstance>() is IInMemoryDelayProvider delays)
        {
            await delays.Advance(by);
        }
    }

    public static async Task<T> EventuallyAsync<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what + "; last value: " + value);
            }

            await Task.Delay(25);
        }
    }

    public Task<IntentLifecycleState?> SagaInStateAsync(Guid intentId, string state) =>
        EventuallyAsync(() => SagaAsync(intentId), s => s?.CurrentState == state, $"saga {intentId} to be {state}")!;

    public Task<LineageRecord?> LineageKeyAsync(string key) =>
        EventuallyAsync(() => Lineage.GetByKeyAsync(key), r => r is not null, $"lineage key {key}");

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.DisposeAsync();
        }

        foreach (var hosted in Enumerable.Reverse(_hosted))
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _provider.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>How the stand-in answers.</summary>
internal enum StandInMode
{
    Decide,
    TamperSignature,
    WrongAgentKey,
}

/// <summary>
/// Stands in for the Authorize worker in these SDK and saga tests: verifies the credential and the intent signature
/// with the trust library, allows <c>deploy</c> and denies the rest, signs a real grant and routes the decision to
/// the agent's own queue only (as Authorize does). The end-to-end tests run the real worker.
/// </summary>
internal sealed class StandInAuthorizer(DomainKeys keys, TimeProvider clock)
{
    public StandInMode Mode { get; set; } = StandInMode.Decide;

    public TimeSpan LeaseLength { get; set; } = TimeSpan.FromSeconds(60);

    public long PolicyEpoch { get; set; } = 1;

    /// <summary>Changes the claims before they are signed (one wrong claim at a time, validly signed).</summary>
    public Func<GrantClaims, GrantClaims>? Rewrite { get; set; }

    /// <summary>The unsigned <c>GrantIssued.Domain</c> to send (the harness domain when null).</summary>
    public string? MessageDomain { get; set; }

    public object Decide(IntentSubmitted intent)
    {
        var now = clock.GetUtcNow();
        var credential = Credentials.Verify(intent.Credential, keys.LoadTrust(), now, TimeSpan.FromSeconds(30));
        if (!credential.IsValid)
        {
            return new GrantDenied(intent.IntentId, SkeletonHarness.Domain, intent.Agent, credential.Reason, credential.Detail, null, []);
        }

        var agentKey = credential.Value!.AgentKey;
        if (credential.Value.Subject != intent.Agent || !IntentSignature.Verify(intent, Base64Url.Decode(agentKey)))
        {
            return new GrantDenied(intent.IntentId, SkeletonHarness.Domain, intent.Agent, GovernanceReason.SignatureInvalid, "intent signature does not verify", null, []);
        }

        if (intent.Action != "deploy")
        {
            return new GrantDenied(intent.IntentId, SkeletonHarness.Domain, intent.Agent, GovernanceReason.PolicyDenied, $"rule no-{intent.Action} denies {intent.Action}", 7, ["no-" + intent.Action]);
        }

        if (Mode == StandInMode.WrongAgentKey)
        {
            agentKey = Base64Url.Encode(Ed25519Keys.PublicKeyOf(Ed25519Keys.NewPrivateKey()));
        }

        var iat = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds());
        var claims = new GrantClaims(SkeletonHarness.Domain, intent.Agent, intent.TargetDomain, "g-" + intent.IntentId.ToString("N")[..12], intent.IntentId,
            IntentSignature.Digest(intent), intent.Action, intent.Resource, [new PolicyVersion(SkeletonHarness.Domain, PolicyScope.Domain, PolicyEpoch, "sha256:00")],
            3, agentKey, iat, iat, iat + LeaseLength);
        claims = Rewrite?.Invoke(claims) ?? claims;
        var grant = Grants.Issue(claims, keys.Signer(KeyUsage.Grant, now));
        if (Mode == StandInMode.TamperSignature)
        {
            // Change one claim after signing: the signature no longer covers the payload.
            var parts = grant.Split('.');
            var payload = System.Text.Encoding.UTF8.GetString(Base64Url.Decode(parts[1])).Replace("\"deploy\"", "\"delete\"", StringComparison.Ordinal);
            grant = parts[0] + "." + Base64Url.Encode(System.Text.Encoding.UTF8.GetBytes(payload)) + "." + parts[2];
        }

        return new GrantIssued(intent.IntentId, MessageDomain ?? SkeletonHarness.Domain, intent.Agent, grant, 3, claims.ExpiresAt);
    }
}

internal sealed class StandInAuthorizerConsumer(StandInAuthorizer authorizer, DomainKeys keys, TimeProvider clock) : IConsumer<IntentSubmitted>
{
    public async Task Consume(ConsumeContext<IntentSubmitted> context)
    {
        var decision = authorizer.Decide(context.Message);
        if (decision is GrantDenied denied)
        {
            decision = AgentNotices.Sign(denied, keys.Signer(KeyUsage.Grant, clock.GetUtcNow()), clock.GetUtcNow());
        }

        var endpoint = await context.GetSendEndpoint(AgentQueue.Address(context.Message.Agent));
        await endpoint.Send(decision, decision.GetType(), context.CancellationToken);
        // As Authorize does: the verified intent and the decision, for the saga (agent, cnf) and lineage.
        await context.Publish(context.Message, context.CancellationToken);
        await context.Publish(decision, decision.GetType(), context.CancellationToken);
    }
}

/// <summary>What each endpoint took, with the endpoint's queue name.</summary>
internal sealed class ConsumedMessages : IConsumeObserver
{
    public System.Collections.Concurrent.ConcurrentQueue<(string Endpoint, object Message)> Taken { get; } = new();

    public System.Collections.Concurrent.ConcurrentQueue<(string Endpoint, object Message)> Faulted { get; } = new();

    public Task PreConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PostConsume<T>(ConsumeContext<T> context)
        where T : class
    {
        Taken.Enqueue((context.ReceiveContext.InputAddress?.AbsolutePath ?? "", context.Message));
        return Task.CompletedTask;
    }

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
        where T : class
    {
        Faulted.Enqueue((context.ReceiveContext.InputAddress?.AbsolutePath ?? "", context.Message));
        Taken.Enqueue((context.ReceiveContext.InputAddress?.AbsolutePath ?? "", context.Message));
        return Task.CompletedTask;
    }
}

/// <summary>The stand-in reads the agent ingress of intents, as Authorize does.</summary>
internal sealed class StandInAuthorizerConsumerDefinition : ConsumerDefinition<StandInAuthorizerConsumer>
{
    public StandInAuthorizerConsumerDefinition() => EndpointName = "stand-in-authorize";

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<StandInAuthorizerConsumer> consumerConfigurator, IRegistrationContext context) =>
        AgentIngressEndpoint.Configure(endpointConfigurator, context, AgentIngress.IntentsExchange, [.. AgentIngress.IntentTypes], o => o.MaxIntentBytes);
}

/// <summary>How many messages the endpoints have taken and not yet finished (the outbox's sends included).</summary>
internal sealed class ReceivesInFlight : IReceiveObserver
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public Task PreReceive(ReceiveContext context)
    {
        Interlocked.Increment(ref _count);
        return Task.CompletedTask;
    }

    public Task PostReceive(ReceiveContext context)
    {
        Interlocked.Decrement(ref _count);
        return Task.CompletedTask;
    }

    public Task PostConsume<T>(ConsumeContext<T> context, TimeSpan duration, string consumerType)
        where T : class => Task.CompletedTask;

    public Task ConsumeFault<T>(ConsumeContext<T> context, TimeSpan duration, string consumerType, Exception exception)
        where T : class => Task.CompletedTask;

    public Task ReceiveFault(ReceiveContext context, Exception exception)
    {
        Interlocked.Decrement(ref _count);
        return Task.CompletedTask;
    }
}
