using MeshBus.Persistence;

namespace MeshBus.Hosting;

/// <summary>Which broker a domain's bus runs on.</summary>
public enum TransportKind
{
    /// <summary>MassTransit's in-memory transport: embedded mode and fast tests.</summary>
    InMemory,

    /// <summary>RabbitMQ: one broker per domain, workers as competing consumers.</summary>
    RabbitMq,
}

/// <summary>The <c>MeshBus</c> configuration section (environment: <c>MeshBus__Domain</c>, ...).</summary>
public sealed class MeshBusOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "MeshBus";

    /// <summary>The trust domain this process serves, e.g. <c>acme.example/prod</c>. Required.</summary>
    public string Domain { get; set; } = "";

    /// <summary>The transport.</summary>
    public TransportKind Transport { get; set; } = TransportKind.InMemory;

    /// <summary>Directory for embedded state (SQLite files) and the domain's key directory by default.</summary>
    public string DataDirectory { get; set; } = ".meshbus";

    /// <summary>Directory holding the domain's keys (written by <c>meshbus keys init</c>); defaults to <c>DataDirectory/keys</c>.</summary>
    public string? KeyDirectory { get; set; }

    /// <summary>Immediate retries of a failing message before it is redelivered later.</summary>
    public int ImmediateRetries { get; set; } = 3;

    /// <summary>The redelivery delays used when <see cref="RedeliverySeconds"/> is not configured.</summary>
    public static IReadOnlyList<double> DefaultRedeliverySeconds { get; } = [1, 5, 15];

    /// <summary>
    /// Delays of the later redeliveries (seconds) before the message goes to the error queue; null means
    /// <see cref="DefaultRedeliverySeconds"/>. Null rather than an initialized array because the configuration binder
    /// appends configured elements to an existing array: <c>MeshBus__RedeliverySeconds__0=2</c> must mean <c>[2]</c>.
    /// </summary>
    public double[]? RedeliverySeconds { get; set; }

    /// <summary>The redelivery delays in effect (seconds): the configured ones, or the defaults.</summary>
    public IReadOnlyList<double> RedeliveryIntervals => RedeliverySeconds ?? DefaultRedeliverySeconds;

    /// <summary>The directory of the domain's keys.</summary>
    public string ResolvedKeyDirectory => KeyDirectory ?? Path.Combine(DataDirectory, "keys");
}

/// <summary>The <c>RabbitMqTransport</c> section (environment: <c>RabbitMqTransport__Host</c>, ...).</summary>
public sealed class RabbitMqTransportOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "RabbitMqTransport";

    /// <summary>Broker host name.</summary>
    public string Host { get; set; } = "";

    /// <summary>AMQP port.</summary>
    public ushort Port { get; set; } = 5672;

    /// <summary>Virtual host (one per domain when domains share a broker in tests).</summary>
    public string VirtualHost { get; set; } = "/";

    /// <summary>User name.</summary>
    public string Username { get; set; } = "";

    /// <summary>Password.</summary>
    public string Password { get; set; } = "";

    /// <summary>Default prefetch per endpoint (consumer definitions may set their own).</summary>
    public ushort PrefetchCount { get; set; } = 32;

    /// <summary>
    /// Prefixes every exchange (published message types) and every queue (endpoints, the scheduler queue) this
    /// process declares, so that several meshes share one virtual host without seeing each other's events (tests,
    /// load runs). Empty (the default): MassTransit's names. Production gives each domain its own virtual host or
    /// broker instead. Every process of one mesh, and its agents' buses, must use the same prefix.
    /// </summary>
    public string EntityPrefix { get; set; } = "";
}

/// <summary>The <c>Storage</c> section.</summary>
public sealed class StorageOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "Storage";

    /// <summary>SQLite (embedded) or PostgreSQL (fleet).</summary>
    public StorageProvider Provider { get; set; } = StorageProvider.Sqlite;

    /// <summary>PostgreSQL connection string (required with <see cref="StorageProvider.Postgres"/>).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>
    /// PostgreSQL connections per pool (<c>Maximum Pool Size</c>) unless the connection string names its own. A process
    /// opens at most one pool per store it uses (the lineage log, the worker's own tables, the saga and schedule store,
    /// the bridge's store), so its connections stay below pools × this; docs/operations.md lists the budget per worker.
    /// Small by default so that a whole domain (nine processes) fits a default PostgreSQL (<c>max_connections</c> 100).
    /// </summary>
    public int PoolSize { get; set; } = DefaultPoolSize;

    /// <summary>The default of <see cref="PoolSize"/>.</summary>
    public const int DefaultPoolSize = 3;
}

/// <summary>The <c>Health</c> section: where <c>/health/live</c> and <c>/health/ready</c> are served.</summary>
public sealed class HealthOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "Health";

    /// <summary>The URL Kestrel listens on, e.g. <c>http://0.0.0.0:8080</c> in a container; empty disables the endpoints.</summary>
    public string Urls { get; set; } = "";

    /// <summary>
    /// How often the depth of this process's error and skipped queues is read from the broker for
    /// <c>meshbus_error_queue_depth</c> (RabbitMQ only; one passive declare per queue).
    /// </summary>
    public TimeSpan ErrorQueueInterval { get; set; } = TimeSpan.FromSeconds(30);
}
