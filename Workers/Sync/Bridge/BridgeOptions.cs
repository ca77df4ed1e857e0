using MeshBus.Federation;

namespace MeshBus.Workers.Sync.Bridge;

/// <summary>Which transport joins the domains.</summary>
public enum BridgeLink
{
    /// <summary>No bridge: a single domain.</summary>
    None,

    /// <summary>NATS JetStream (fleet).</summary>
    Nats,

    /// <summary>An in-process network (embedded mode: domains in one process); the host registers the link.</summary>
    InProcess,
}

/// <summary>The <c>Federation</c> section: the bridge to peer domains, hosted by Sync.</summary>
public sealed class BridgeOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "Federation";

    /// <summary>The transport; <see cref="BridgeLink.None"/> hosts no bridge.</summary>
    public BridgeLink Link { get; set; } = BridgeLink.None;

    /// <summary>NATS connection of this domain's user (<c>Federation:Nats:Url</c>, <c>…:User</c>, <c>…:Password</c>, <c>…:CredentialsFile</c>, <c>…:CaFile</c>).</summary>
    public NatsFederationLinkOptions Nats { get; set; } = new();

    /// <summary>Tolerated clock difference between domains.</summary>
    public int SkewSeconds { get; set; } = 30;

    /// <summary>How long a linkSeq hole waits for reordered delivery before a resend is requested.</summary>
    public int GapGraceMilliseconds { get; set; } = 2000;

    /// <summary>How often the outbound pump, gap repair and pruning run.</summary>
    public int MaintenanceIntervalMilliseconds { get; set; } = 1000;

    /// <summary>Authorize's endorsement queue (before the entity prefix), where inbound endorsements are sent.</summary>
    public string EndorsementQueue { get; set; } = "authorize-endorsements";

    /// <summary>Relay endpoint concurrency.</summary>
    public int ConcurrentMessageLimit { get; set; } = 16;

    /// <summary>Whether the bridge is on, from configuration (read before the container is built).</summary>
    public static bool Enabled(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        Enum.TryParse<BridgeLink>(configuration[Section + ":Link"], ignoreCase: true, out var link) && link != BridgeLink.None;
}
