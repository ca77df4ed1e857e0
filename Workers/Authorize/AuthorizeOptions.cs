using MeshBus.Hosting;
using Microsoft.Extensions.Options;

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

    /// <summary>
    /// How often this replica reports what it has loaded to the domain's database (Sync acknowledges an epoch only when
    /// every replica that reported recently has loaded it; <c>Sync:ReplicaLiveness</c> must be longer).
    /// </summary>
    public double ReplicaReportSeconds { get; set; } = 2;

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
    /// The federation this domain belongs to (the <c>domain</c> of its federation policy bundles). When set, every
    /// decision also needs that federation's policy (deny overrides); until a version signed by every pinned root is
    /// loaded, decisions are denied <c>SyncStale</c>.
    /// </summary>
    public string? FederationName { get; set; }

    /// <summary>A federation policy bundle, signed by the root of every domain pinned in the trust config, loaded at start.</summary>
    public string? FederationPolicyBundleFile { get; set; }

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

/// <summary>
/// Refuses settings that would break a fail-closed promise at start-up, naming the variable: an intent waiting for
/// governance must end in a recorded <c>SyncStale</c> denial, so the hosting must redeliver it at least
/// <see cref="AuthorizeOptions.SyncMaxRedeliveries"/> times (otherwise it would land in the error queue and the
/// agent would hear nothing).
/// </summary>
internal sealed class AuthorizeOptionsValidator(IOptions<MeshBusOptions> mesh) : IValidateOptions<AuthorizeOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthorizeOptions options)
    {
        var errors = new List<string>();
        var redeliveries = mesh.Value.RedeliveryIntervals.Count;
        if (options.SyncMaxRedeliveries < 0 || options.SyncMaxRedeliveries > redeliveries)
        {
            errors.Add($"Authorize:SyncMaxRedeliveries ({options.SyncMaxRedeliveries}) must be between 0 and the number of MeshBus:RedeliverySeconds " +
                $"delays ({redeliveries}), so that an intent waiting for governance is denied SyncStale instead of ending in the error queue " +
                "(environment variable Authorize__SyncMaxRedeliveries)");
        }

        Positive(errors, options.HeartbeatBoundSeconds, "HeartbeatBoundSeconds");
        Positive(errors, options.LineageTimeoutMs, "LineageTimeoutMs");
        Positive(errors, options.MaxIntentAgeSeconds, "MaxIntentAgeSeconds");
        Positive(errors, options.DefaultLeaseSeconds, "DefaultLeaseSeconds");
        Positive(errors, options.ReplicaReportSeconds, "ReplicaReportSeconds");
        Positive(errors, options.ConcurrentMessageLimit, "ConcurrentMessageLimit");
        Positive(errors, options.PrefetchCount, "PrefetchCount");
        if (options.SyncWaitSeconds < 0 || options.ClockSkewSeconds < 0)
        {
            errors.Add("Authorize:SyncWaitSeconds and Authorize:ClockSkewSeconds must not be negative");
        }

        Positive(errors, options.EndorsementTtlSeconds, "EndorsementTtlSeconds");
        if (options.FederationPolicyBundleFile is { Length: > 0 } && string.IsNullOrWhiteSpace(options.FederationName))
        {
            errors.Add("Authorize:FederationPolicyBundleFile needs Authorize:FederationName, the federation the bundle belongs to (environment variable Authorize__FederationName)");
        }

        foreach (var (setting, file) in new[]
        {
            ("PolicyBundleFile", options.PolicyBundleFile), ("EgressPolicyBundleFile", options.EgressPolicyBundleFile),
            ("FederationPolicyBundleFile", options.FederationPolicyBundleFile),
        })
        {
            if (file is { Length: > 0 } && !File.Exists(file))
            {
                errors.Add($"Authorize:{setting} '{file}' does not exist (environment variable Authorize__{setting})");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Positive(List<string> errors, double value, string setting)
    {
        if (!(value > 0))
        {
            errors.Add($"Authorize:{setting} must be positive (environment variable Authorize__{setting})");
        }
    }
}
