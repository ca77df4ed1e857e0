using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Cli.Commands.Agent;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Integration.Tests.Processes;
using MeshBus.Ledger;
using MeshBus.Persistence;
using MeshBus.TestSupport;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Enforce;
using MeshBus.Workers.Enforce.Lifecycle;
using MeshBus.Workers.Lineage;
using MeshBus.Workers.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RabbitMQ.Client;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Boundary;

/// <summary>
/// One domain's four workers in this process on the shared RabbitMQ (a run's own domain, entity prefix and data
/// directory, as <see cref="WorkerRun"/>), with a real signed policy, and agents that talk to it with RabbitMQ.Client
/// alone, each as its own restricted broker user made with <see cref="AgentBrokerAccess"/> (random names, deleted at
/// the end).
/// </summary>
internal sealed class BoundaryMesh : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private readonly RabbitMqFixture _rabbit;
    private readonly List<string> _users = [];
    private readonly List<RawAgent> _agents = [];
    private IHost? _host;
    private IConnection? _admin;

    private BoundaryMesh(RabbitMqFixture rabbit, ITestOutputHelper output)
    {
        _rabbit = rabbit;
        Run = new WorkerRun(rabbit.AmqpUri, "boundary", output);
    }

    public WorkerRun Run { get; }

    public DomainKeys Keys { get; private set; } = null!;

    public IServiceProvider Services => _host!.Services;

    public ILineageLog Lineage => Services.GetRequiredService<ILineageLog>();

    public IQuarantineState Quarantine => Services.GetRequiredService<IQuarantineState>();

    public string VirtualHost => _rabbit.AmqpUri.AbsolutePath.TrimStart('/') is { Length: > 0 } v ? Uri.UnescapeDataString(v) : "/";

    public static async Task<BoundaryMesh> StartAsync(RabbitMqFixture rabbit, ITestOutputHelper output, IDictionary<string, string>? settings = null)
    {
        var mesh = new BoundaryMesh(rabbit, output);
        try
        {
            await mesh.StartHostAsync(settings);
        }
        catch
        {
            await mesh.DisposeAsync();
            throw;
        }

        return mesh;
    }

    private async Task StartHostAsync(IDictionary<string, string>? settings)
    {
        var now = DateTimeOffset.UtcNow;
        var keyDir = Path.Combine(Run.DataDirectory, "keys");
        Keys = DomainKeys.Load(DomainAdministration.Initialize(keyDir, Run.Domain, now).DirectoryPath, KeyUsage.Credential, KeyUsage.Grant);
        var policy = Run.WritePolicy(keyDir, now);
        var user = _rabbit.AmqpUri.UserInfo.Split(':');
        var values = new Dictionary<string, string>
        {
            ["MeshBus:Domain"] = Run.Domain,
            ["MeshBus:Transport"] = "RabbitMq",
            ["MeshBus:DataDirectory"] = Run.DataDirectory,
            ["MeshBus:KeyDirectory"] = keyDir,
            ["MeshBus:ImmediateRetries"] = "1",
            ["RabbitMqTransport:Host"] = _rabbit.AmqpUri.Host,
            ["RabbitMqTransport:Port"] = _rabbit.AmqpUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RabbitMqTransport:VirtualHost"] = VirtualHost,
            ["RabbitMqTransport:Username"] = Uri.UnescapeDataString(user[0]),
            ["RabbitMqTransport:Password"] = Uri.UnescapeDataString(user.ElementAtOrDefault(1) ?? ""),
            ["RabbitMqTransport:EntityPrefix"] = Run.Prefix,
            ["Sync:PolicyBundleFile"] = policy,
            ["Sync:HeartbeatInterval"] = "00:00:01",
            ["Authorize:PolicyBundleFile"] = policy,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string>())
        {
            values[k] = v;
        }

        var builder = MeshBusHost.CreateBuilder([.. values.Select(kv => $"--{kv.Key}={kv.Value}")], new SyncWorker(), new AuthorizeWorker(), new EnforceWorker(), new LineageWorker());
        builder.Services.Configure<MassTransit.MassTransitHostOptions>(o => o.WaitUntilStarted = true);
        _host = builder.Build();
        MeshBusHost.ValidateOptions(_host.Services);
        using var started = new CancellationTokenSource(Bound);
        await _host.StartAsync(started.Token);
        _admin = await new ConnectionFactory { Uri = _rabbit.AmqpUri }.CreateConnectionAsync();
    }

    /// <summary>An agent of the domain: its key, a credential, its own broker user (provisioned as the CLI does), its queue declared by the mesh.</summary>
    public async Task<RawAgent> AgentAsync(string name)
    {
        var subject = $"{Run.Domain}/agents/{name}-{Guid.NewGuid().ToString("N")[..6]}";
        var key = Ed25519Keys.NewPrivateKey();
        var now = DateTimeOffset.UtcNow;
        var credential = MeshBus.Trust.Credentials.Issue(
            new CredentialClaims(Run.Domain, subject, "c-" + Guid.NewGuid().ToString("N")[..8], Base64Url.Encode(Ed25519Keys.PublicKeyOf(key)),
                new AgentAttributes("sha256:boundary", "test", "team-web", ["deployers"]), now.AddMinutes(-1), now.AddMinutes(-1), now.AddHours(1)),
            Keys.Signer(KeyUsage.Credential, now));
        var access = AgentBrokerAccess.For(subject, Run.Prefix);
        var password = Guid.NewGuid().ToString("N");
        _users.Add(access.User);
        Run.RemoveAtEnd(access.Queue);
        foreach (var command in access.RabbitMqCtlCommands(password, VirtualHost))
        {
            await _rabbit.RabbitMqCtlAsync(command);
        }

        await access.DeclareQueueAsync(_admin!);
        var uri = new UriBuilder(_rabbit.AmqpUri) { UserName = Uri.EscapeDataString(access.User), Password = password }.Uri;
        var agent = await RawAgent.ConnectAsync(uri, subject, key, credential, access.Queue, Run.Prefix, Run.Domain);
        _agents.Add(agent);
        return agent;
    }

    public Task<IntentLifecycleState?> SagaAsync(Guid intentId) =>
        Services.GetRequiredService<ISagaStateReader>().LoadAsync<IntentLifecycleState>(intentId);

    public async Task<IntentLifecycleState> SagaInStateAsync(Guid intentId, string state)
    {
        IntentLifecycleState? saga = null;
        await EventuallyAsync(async () => (saga = await SagaAsync(intentId))?.CurrentState == state, $"saga {intentId} in {state} (now {saga?.CurrentState})");
        return saga!;
    }

    /// <summary>Takes every message now in <paramref name="queue"/> (as the mesh's user), until it has been empty for a moment.</summary>
    public async Task<List<BasicGetResult>> DrainAsync(string queue)
    {
        var taken = new List<BasicGetResult>();
        await using var channel = await _admin!.CreateChannelAsync();
        try
        {
            await channel.QueueDeclarePassiveAsync(queue);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == 404)
        {
            return taken;
        }

        while (await channel.BasicGetAsync(queue, autoAck: true) is { } message)
        {
            taken.Add(message);
        }

        return taken;
    }

    /// <summary>
    /// Waits until every one of <paramref name="messageIds"/> is found in one of <paramref name="errorQueues"/>;
    /// returns their fault reasons by message id.
    /// </summary>
    public Task<Dictionary<string, string>> ErrorsAsync(IReadOnlyCollection<string> messageIds, params string[] errorQueues) => ErrorsAsync(messageIds, null, errorQueues);

    public async Task<Dictionary<string, string>> ErrorsAsync(IReadOnlyCollection<string> messageIds, Func<string, string>? describe, params string[] errorQueues)
    {
        var found = new Dictionary<string, string>();
        await EventuallyAsync(async () =>
        {
            foreach (var queue in errorQueues)
            {
                foreach (var message in await DrainAsync(Run.Prefix + queue))
                {
                    if (MessageIdOf(message) is { } id)
                    {
                        found[id] = $"{Header(message, "MT-Fault-Message")} [{Header(message, "MT-Fault-ExceptionType")}; retries {Count(message, "MT-Fault-RetryCount")}, redeliveries {Count(message, "MT-Redelivery-Count")}]";
                    }
                }
            }

            return messageIds.All(found.ContainsKey);
        }, () => $"{messageIds.Count} messages in {string.Join(", ", errorQueues)} (found {found.Count}); missing {string.Join(", ", messageIds.Where(i => !found.ContainsKey(i)).Select(i => describe?.Invoke(i) ?? i).Take(8))}");
        return found;
    }

    public static string Header(BasicGetResult result, string name) =>
        result.BasicProperties.Headers?.TryGetValue(name, out var value) == true
            ? value switch { byte[] b => Encoding.UTF8.GetString(b), _ => value?.ToString() ?? "" }
            : "";

    /// <summary>The AMQP message id, or the envelope's <c>messageId</c> when the error copy carries none.</summary>
    private static string? MessageIdOf(BasicGetResult message)
    {
        if (message.BasicProperties.MessageId is { Length: > 0 } id)
        {
            return id;
        }

        try
        {
            using var doc = JsonDocument.Parse(message.Body);
            return doc.RootElement.TryGetProperty("messageId", out var m) ? m.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A count header, 0 when absent (MassTransit writes the retry and redelivery counts only when there were some).</summary>
    private static string Count(BasicGetResult result, string name) => Header(result, name) is { Length: > 0 } n ? n : "0";

    public static Task EventuallyAsync(Func<Task<bool>> condition, string what) => EventuallyAsync(condition, () => what);

    public static async Task EventuallyAsync(Func<Task<bool>> condition, Func<string> what)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what());
            }

            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.DisposeAsync();
        }

        if (_host is not null)
        {
            await _host.StopAsync(CancellationToken.None);
            _host.Dispose();
        }

        foreach (var user in _users)
        {
            try
            {
                await _rabbit.RabbitMqCtlAsync(["delete_user", user]);
            }
            catch (InvalidOperationException)
            {
                // best effort: the user may not have been created
            }
        }

        if (_admin is not null)
        {
            await _admin.DisposeAsync();
        }

        await Run.DisposeAsync();
    }
}

/// <summary>
/// An agent written from docs/wire-format.md alone: RabbitMQ.Client, envelopes built by hand, signatures with the
/// trust library's canonical forms. Publishes only to the agent ingress; reads its own queue.
/// </summary>
internal sealed class RawAgent : IAsyncDisposable
{
    private readonly IConnection _connection;
    private readonly string _prefix;
    private readonly Uri _uri;

    private RawAgent(Uri uri, IConnection connection, IChannel channel, string subject, byte[] key, string credential, string queue, string prefix, string domain)
    {
        _uri = uri;
        _connection = connection;
        Channel = channel;
        Subject = subject;
        PrivateKey = key;
        Credential = credential;
        Queue = queue;
        _prefix = prefix;
        Domain = domain;
    }

    public IChannel Channel { get; private set; }

    public string Subject { get; }

    public byte[] PrivateKey { get; }

    public string Credential { get; }

    public string Queue { get; }

    public string Domain { get; }

    public string IntentsExchange => _prefix + AgentIngress.IntentsExchange;

    public string ReportsExchange => _prefix + AgentIngress.ReportsExchange;

    public static async Task<RawAgent> ConnectAsync(Uri uri, string subject, byte[] key, string credential, string queue, string prefix, string domain)
    {
        var connection = await new ConnectionFactory { Uri = uri }.CreateConnectionAsync();
        var channel = await connection.CreateChannelAsync();
        return new RawAgent(uri, connection, channel, subject, key, credential, queue, prefix, domain);
    }

    public IntentSubmitted Intent(Guid? id = null, string action = "deploy", string parameters = """{"replicas":3}""", long maxDurationSeconds = 600) =>
        IntentSignature.Sign(new IntentSubmitted(
            id ?? Guid.NewGuid(), Domain, Subject, Domain, action, "k8s://cluster-a/ns/web",
            JsonDocument.Parse(parameters).RootElement.Clone(), maxDurationSeconds, "n-" + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow, Credential, ""), PrivateKey);

    /// <summary>The MassTransit envelope of <paramref name="message"/> claiming <paramref name="urn"/> (its own type by default).</summary>
    public static byte[] Envelope(object message, string? urn = null, string? messageId = null) =>
        Encoding.UTF8.GetBytes(new JsonObject
        {
            ["messageId"] = messageId ?? Guid.NewGuid().ToString(),
            ["messageType"] = new JsonArray(urn ?? Urn(message.GetType())),
            ["headers"] = new JsonObject(),
            ["message"] = (message as JsonNode)?.DeepClone() ?? JsonSerializer.SerializeToNode(message, message.GetType(), JsonSerializerOptions.Web),
        }.ToJsonString());

    public static string Urn(Type type) => $"urn:message:{type.Namespace}:{type.Name}";

    /// <summary>Publishes to an exchange; returns the message id (also the envelope's).</summary>
    public async Task<string> PublishAsync(string exchange, byte[] body, string? messageId = null)
    {
        var id = messageId ?? Guid.NewGuid().ToString();
        var properties = new BasicProperties { ContentType = "application/vnd.masstransit+json", DeliveryMode = DeliveryModes.Persistent, MessageId = id };
        await Channel.BasicPublishAsync(exchange, "", mandatory: false, properties, body);
        return id;
    }

    public Task<string> SendAsync(object message, string? urn = null)
    {
        var id = Guid.NewGuid().ToString();
        var exchange = message is IntentSubmitted ? IntentsExchange : ReportsExchange;
        return PublishAsync(exchange, Envelope(message, urn, id), id);
    }

    /// <summary>Waits for the grant or the denial of an intent in the agent's queue.</summary>
    public async Task<object> AnswerAsync(Guid intentId)
    {
        var deadline = DateTime.UtcNow + BoundaryMesh.Bound;
        while (DateTime.UtcNow < deadline)
        {
            if (await Channel.BasicGetAsync(Queue, autoAck: true) is { } got)
            {
                using var doc = JsonDocument.Parse(got.Body);
                var types = doc.RootElement.GetProperty("messageType").EnumerateArray().Select(t => t.GetString()).ToList();
                var body = doc.RootElement.GetProperty("message");
                object? answer = types.Contains(Urn(typeof(GrantIssued))) ? body.Deserialize<GrantIssued>(JsonSerializerOptions.Web)
                    : types.Contains(Urn(typeof(GrantDenied))) ? body.Deserialize<GrantDenied>(JsonSerializerOptions.Web) : null;
                if (answer is GrantIssued { IntentId: var g } && g == intentId || answer is GrantDenied { IntentId: var d } && d == intentId)
                {
                    return answer!;
                }

                continue;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"no answer for intent {intentId} in {Queue}");
    }

    /// <summary>Waits for the next message in the agent's queue whose type is <typeparamref name="T"/> and that matches.</summary>
    public async Task<T> ReceiveAsync<T>(Func<T, bool> match)
    {
        var deadline = DateTime.UtcNow + BoundaryMesh.Bound;
        while (DateTime.UtcNow < deadline)
        {
            if (await Channel.BasicGetAsync(Queue, autoAck: true) is { } got)
            {
                using var doc = JsonDocument.Parse(got.Body);
                var types = doc.RootElement.GetProperty("messageType").EnumerateArray().Select(t => t.GetString()).ToList();
                if (types.Contains(Urn(typeof(T))))
                {
                    var message = doc.RootElement.GetProperty("message").Deserialize<T>(JsonSerializerOptions.Web)!;
                    if (match(message))
                    {
                        return message;
                    }
                }

                continue;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"no {typeof(T).Name} in {Queue}");
    }

    /// <summary>
    /// Tries one broker operation on a fresh channel of this agent's user and returns the AMQP reply code it was
    /// refused with (403 ACCESS_REFUSED, 404 NOT_FOUND), or 0 when the broker allowed it.
    /// </summary>
    public async Task<int> TryAsync(Func<IChannel, Task> operation)
    {
        // A connection of its own: a refusal must not disturb the agent's main connection (or race its recovery).
        await using var connection = await new ConnectionFactory { Uri = _uri, AutomaticRecoveryEnabled = false }.CreateConnectionAsync();
        var channel = await connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        try
        {
            await operation(channel);
            // A refused publish closes the channel asynchronously; a confirmed one does not. Wait for either.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (!channel.IsClosed && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
                if (channel.IsOpen)
                {
                    break;
                }
            }

            return channel.CloseReason?.ReplyCode ?? 0;
        }
        catch (Exception e) when (e is RabbitMQ.Client.Exceptions.OperationInterruptedException or RabbitMQ.Client.Exceptions.PublishException or RabbitMQ.Client.Exceptions.AlreadyClosedException)
        {
            await Task.Delay(50);
            return channel.CloseReason?.ReplyCode ?? (e as RabbitMQ.Client.Exceptions.OperationInterruptedException)?.ShutdownReason?.ReplyCode ?? -1;
        }
        finally
        {
            await channel.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Channel.DisposeAsync();
        await _connection.DisposeAsync();
    }
}
