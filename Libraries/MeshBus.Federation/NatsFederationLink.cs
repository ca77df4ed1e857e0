using Microsoft.Extensions.Logging;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;
using NATS.Net;

namespace MeshBus.Federation;

/// <summary>
/// The fleet's bridge transport: JetStream. Each domain owns one stream, <c>MESHBUS_&lt;token&gt;</c>, holding the
/// subjects addressed to it (<c>meshbus.&lt;token&gt;.&gt;</c>, file storage), and one durable pull consumer on it that all
/// its Sync replicas share (competing). Publishing waits for the stream's acknowledgement and sets <c>Nats-Msg-Id</c>
/// (JetStream drops a repeat within the duplicate window; a "duplicate" acknowledgement counts as published). A peer's stream that does not exist yet makes the publish fail;
/// the outbound log keeps the envelope and the bridge publishes it again.
/// </summary>
public sealed class NatsFederationLink : IFederationLink
{
    /// <summary>The durable consumer's name.</summary>
    public const string ConsumerName = "meshbus-bridge";

    private readonly NatsClient _client;
    private readonly INatsJSContext _js;
    private readonly string _domain;
    private readonly NatsFederationLinkOptions _options;
    private readonly ILogger _logger;

    /// <summary>Connects (lazily) as the domain's NATS user; <paramref name="natsLogging"/> receives the NATS client's own log (connects, reconnects).</summary>
    public NatsFederationLink(string domain, NatsFederationLinkOptions options, ILogger<NatsFederationLink> logger, ILoggerFactory? natsLogging = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(domain);
        ArgumentNullException.ThrowIfNull(options);
        _domain = domain;
        _options = options;
        _logger = logger;
        _client = new NatsClient(new NatsOpts
        {
            Url = options.Url,
            Name = "meshbus-bridge " + domain,
            // Replies (JetStream API answers, pulled messages) come to this domain's own inbox prefix, so its NATS user
            // needs no subscribe permission on anyone else's replies.
            InboxPrefix = InboxPrefix(domain),
            AuthOpts = new NatsAuthOpts { Username = options.User, Password = options.Password, CredsFile = options.CredentialsFile },
            TlsOpts = options.CaFile is null ? NatsTlsOpts.Default : new NatsTlsOpts { CaFile = options.CaFile, Mode = TlsMode.Require },
            RetryOnInitialConnect = true,
            MaxReconnectRetry = -1,
            LoggerFactory = natsLogging ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance,
        });
        _js = _client.CreateJetStreamContext();
    }

    /// <summary>The inbox prefix of a domain's connections (its NATS user may subscribe to <c>&lt;prefix&gt;.&gt;</c>).</summary>
    public static string InboxPrefix(string domain) => "_INBOX_" + Subjects.Token(domain);

    /// <inheritdoc />
    public async Task PublishAsync(string subject, string messageId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.PublishTimeout);
        var ack = await _js.PublishAsync(subject, data.ToArray(), opts: new NatsJSPubOpts { MsgId = messageId }, cancellationToken: timeout.Token);
        // Not EnsureSuccess(): it also throws when the ack says "duplicate", i.e. the stream already holds this envelope
        // because an earlier attempt reached it and only its acknowledgement was lost (a timeout, a reconnect). That is
        // success here; treating it as failure left the envelope unpublished in the outbound log for the whole duplicate
        // window, and the pump, which keeps a link's order, held back everything behind it.
        if (ack.Error is { } error)
        {
            throw new NatsJSApiException(error);
        }
    }

    /// <summary>Creates (or updates) this domain's inbound stream and durable consumer.</summary>
    public async Task<INatsJSConsumer> EnsureInboundAsync(CancellationToken cancellationToken)
    {
        var stream = Subjects.Stream(_domain);
        await _js.CreateOrUpdateStreamAsync(new StreamConfig(stream, [Subjects.Inbound(_domain)])
        {
            Storage = StreamConfigStorage.File,
            DuplicateWindow = _options.DuplicateWindow,
            MaxAge = _options.StreamMaxAge,
        }, cancellationToken);
        return await _js.CreateOrUpdateConsumerAsync(stream, new ConsumerConfig(ConsumerName)
        {
            AckPolicy = ConsumerConfigAckPolicy.Explicit,
            AckWait = _options.AckWait,
            MaxDeliver = -1,
            FilterSubject = Subjects.Inbound(_domain),
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async Task ReceiveAsync(Func<LinkMessage, CancellationToken, Task> handler, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var consumer = await EnsureInboundAsync(cancellationToken);
                await foreach (var msg in consumer.ConsumeAsync<byte[]>(opts: new NatsJSConsumeOpts { MaxMsgs = _options.MaxInFlight }, cancellationToken: cancellationToken))
                {
                    try
                    {
                        await handler(new LinkMessage(msg.Subject, msg.Data ?? []), cancellationToken);
                        await msg.AckAsync(cancellationToken: cancellationToken);
                    }
                    catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                    {
                        _logger.LogWarning(e, "Bridged message on {Subject} not handed over; JetStream delivers it again", msg.Subject);
                        // The local bus is the likely cause: pause before asking for the message again.
                        await Task.Delay(_options.RedeliveryDelay, cancellationToken);
                        await msg.NakAsync(cancellationToken: cancellationToken);
                    }
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // NATS away or the stream being created by another replica: try again; the outbound logs hold what peers sent.
                _logger.LogWarning(e, "Bridge inbound consumer of {Domain} stopped; resuming", _domain);
                await Task.Delay(_options.ReconnectDelay, cancellationToken);
            }
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _client.DisposeAsync();
}

/// <summary>How a domain reaches NATS (the <c>Federation:Nats</c> section).</summary>
public sealed class NatsFederationLinkOptions
{
    /// <summary>The server, e.g. <c>tls://nats.example:4222</c>.</summary>
    public string Url { get; set; } = "nats://127.0.0.1:4222";

    /// <summary>The domain's NATS user (with <see cref="Password"/>), when not using <see cref="CredentialsFile"/>.</summary>
    public string? User { get; set; }

    /// <summary>The password of <see cref="User"/>.</summary>
    public string? Password { get; set; }

    /// <summary>A NATS credentials file (JWT + NKey seed) for the domain's user, in production.</summary>
    public string? CredentialsFile { get; set; }

    /// <summary>The CA that signed the server's certificate; when set, TLS is required.</summary>
    public string? CaFile { get; set; }

    /// <summary>How long a publish waits for the stream's acknowledgement.</summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>JetStream's de-duplication window for <c>Nats-Msg-Id</c>.</summary>
    public TimeSpan DuplicateWindow { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How long the inbound stream keeps messages (longer than any TTL: past it they are useless).</summary>
    public TimeSpan StreamMaxAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long a delivered message may stay unacknowledged before JetStream gives it to another replica.</summary>
    public TimeSpan AckWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The delay before a message that could not be handed over is delivered again.</summary>
    public TimeSpan RedeliveryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The pause before the consumer is re-created after an error.</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Messages pulled at once per replica.</summary>
    public int MaxInFlight { get; set; } = 64;
}
