namespace MeshBus.Workers.Authorize;

/// <summary>The <c>Authorize</c> configuration section (environment: <c>Authorize__LineageTimeoutMs</c>, ...).</summary>
public sealed class AuthorizeOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "Authorize";

    /// <summary>Largest accepted age of the last heartbeat of a domain involved (now − SentAt).</summary>
    public double HeartbeatBoundSeconds { get; set; } = 30;

    /// <summary>
    /// How long an intent that met stale governance keeps being redelivered (measured from its <c>IssuedAt</c>)
    /// before it is denied <c>SyncStale</c>.
    /// </summary>
    public double SyncWaitSeconds { get; set; } = 20;

    /// <summary>Most redeliveries of an intent waiting for fresh governance before it is denied <c>SyncStale</c>.</summary>
    public int SyncMaxRedeliveries { get; set; } = 3;

    /// <summary>Bound of the lineage append (and of the record lookup); past it the decision is <c>LineageUnavailable</c>.</summary>
    public int LineageTimeoutMs { get; set; } = 2000;

    /// <summary>Oldest accepted intent (now − IssuedAt) for a first decision; older is a replay.</summary>
    public double MaxIntentAgeSeconds { get; set; } = 300;

    /// <summary>Tolerated clock skew for credentials and intents issued "in the future".</summary>
    public double ClockSkewSeconds { get; set; } = 30;

    /// <summary>Lease length when the policy's obligations name none.</summary>
    public long DefaultLeaseSeconds { get; set; } = 60;

    /// <summary>A signed domain policy bundle loaded at start (later versions arrive as <c>PolicyPublished</c>).</summary>
    public string? PolicyBundleFile { get; set; }

    /// <summary>
    /// A signed egress policy bundle loaded at start: what this domain's agents may do in other domains (later versions
    /// arrive as <c>PolicyPublished</c> with scope <c>Egress</c>). Without one, every cross-domain intent is denied.
    /// </summary>
    public string? EgressPolicyBundleFile { get; set; }

    /// <summary>
    /// Lifetime of an endorsement (the origin's signed egress decision handed to the target over the bridge): the target
    /// refuses it after <c>exp</c> + <see cref="ClockSkewSeconds"/>.
    /// </summary>
    public long EndorsementTtlSeconds { get; set; } = 60;

    /// <summary>
    /// Isolates the worker on a shared broker (load runs, tests): its queues are named with this prefix, are not bound
    /// to the published message types (send to them directly), and the governance endpoint is
    /// <c>&lt;prefix&gt;authorize-governance</c>. Empty in production.
    /// </summary>
    public string QueuePrefix { get; set; } = "";

    /// <summary>Messages decided at once per replica.</summary>
    public int ConcurrentMessageLimit { get; set; } = 64;

    /// <summary>Messages fetched ahead from the broker per replica.</summary>
    public int PrefetchCount { get; set; } = 128;
}
