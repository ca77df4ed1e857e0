using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust;
using Microsoft.Extensions.Logging;

namespace MeshBus.Workers.Lineage;

/// <summary>
/// Appends every governance event except the decisions (<c>GrantIssued</c>, <c>GrantDenied</c>, <c>GrantRenewed</c>:
/// Authorize records those itself before it releases them) to the domain's lineage log. The leaf is the canonical
/// JSON (RFC 8785) of <c>{type, event}</c>; the key is semantic (<see cref="LineageKeys"/>), so a redelivered event is
/// found, not appended twice. Acknowledgements of appends are never appended. Requests (<c>EvaluateIntent</c>) and
/// liveness (<c>DomainHeartbeat</c>) are not governance events and are not recorded. A statement that carries authority
/// (quarantine, release, acknowledgement, key set, policy) is recorded only when signed by a key allowed to say it
/// (<see cref="GovernanceAuthority"/>); otherwise it goes to the error queue with the reason and never into the log.
/// </summary>
public sealed class GovernanceEventRecorder(ILineageLog log, GovernanceAuthority authority, ILogger<GovernanceEventRecorder> logger) :
    IConsumer<IntentSubmitted>,
    IConsumer<IntentEndorsed>,
    IConsumer<ExecutionStarted>,
    IConsumer<ExecutionHeartbeat>,
    IConsumer<ExecutionCompleted>,
    IConsumer<ExecutionHalted>,
    IConsumer<HaltExecution>,
    IConsumer<AgentQuarantined>,
    IConsumer<AgentReleased>,
    IConsumer<TrustLapsed>,
    IConsumer<TrustRestored>,
    IConsumer<PolicyPublished>,
    IConsumer<PolicySynced>,
    IConsumer<KeySetPublished>,
    IConsumer<CredentialIssued>,
    IConsumer<CosignConflict>
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<IntentSubmitted> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<IntentEndorsed> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionStarted> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionHeartbeat> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionCompleted> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionHalted> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<HaltExecution> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<AgentQuarantined> context) => Append(context, LineageKeys.Of(context.Message), authority.Refusal(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<AgentReleased> context) => Append(context, LineageKeys.Of(context.Message), authority.Refusal(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<TrustLapsed> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<TrustRestored> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<PolicyPublished> context) => Append(context, LineageKeys.Of(context.Message), authority.Refusal(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<PolicySynced> context) => Append(context, LineageKeys.Of(context.Message), authority.Refusal(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<KeySetPublished> context) => Append(context, LineageKeys.Of(context.Message), authority.Refusal(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<CredentialIssued> context) => Append(context, LineageKeys.Of(context.Message));

    /// <inheritdoc />
    public Task Consume(ConsumeContext<CosignConflict> context) => Append(context, LineageKeys.Of(context.Message));

    private async Task Append<T>(ConsumeContext<T> context, string key, string? refusal = null)
        where T : class
    {
        if (refusal is not null)
        {
            throw new MalformedMessageException(typeof(T), [refusal]);
        }

        var entry = new LineageEntry(key, typeof(T).Name, LineageKeys.Leaf(context.Message));
        var result = await log.AppendAsync(entry, context.CancellationToken);
        if (result.AlreadyPresent && !result.StoredData.AsSpan().SequenceEqual(entry.Data))
        {
            if (LineageKeys.IsRepublication(typeof(T).Name, result.StoredData, entry.Data))
            {
                // Sync re-publishes the applied policy every interval (for replicas that start later): same event.
                return;
            }

            // Same semantic key, other content: the first record stands (the log is append-only); say so loudly.
            logger.LogWarning("Lineage key {Key} already holds a different {Type} at index {Index}; the new event is not appended", key, result.StoredType, result.Index);
        }
    }
}

/// <summary>The semantic lineage keys and leaf bytes of governance events (<c>&lt;kind&gt;:&lt;intentId&gt;[:n]</c> where an intent is involved).</summary>
public static class LineageKeys
{
    /// <summary>The leaf bytes: canonical JSON (RFC 8785) of <c>{"event": …, "type": name}</c>.</summary>
    public static byte[] Leaf<T>(T message)
        where T : class => Canonical.Json(new LeafDocument<T>(typeof(T).Name, message));

    /// <summary>
    /// Whether <paramref name="fresh"/> is the periodic re-publication of the event stored as <paramref name="stored"/>:
    /// a <see cref="PolicyPublished"/>, <see cref="PolicySynced"/> or <see cref="KeySetPublished"/> that differs only in when
    /// (and, for a federation bundle, by which member) it was sent. Anything else
    /// that differs under the same key is a real conflict.
    /// </summary>
    public static bool IsRepublication(string type, byte[] stored, byte[] fresh)
    {
        // A federation bundle is put on the bus by every member's Sync in turn: who published it is not the event either.
        string[]? members = type switch
        {
            nameof(PolicyPublished) => [nameof(PolicyPublished.PublishedAt), nameof(PolicyPublished.Publisher)],
            // The acknowledgement's signature covers its time, so it differs with every re-publication too.
            nameof(PolicySynced) => [nameof(PolicySynced.SyncedAt), nameof(PolicySynced.Signature)],
            // A key set is re-published every interval and by a restarted Sync: the signed document is the event.
            nameof(KeySetPublished) => [nameof(KeySetPublished.PublishedAt)],
            _ => null,
        };
        if (members is null)
        {
            return false;
        }

        try
        {
            return JsonNode.DeepEquals(WithoutMembers(stored, members), WithoutMembers(fresh, members));
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static JsonNode? WithoutMembers(byte[] leaf, string[] members)
    {
        var node = JsonNode.Parse(leaf);
        if (node?["event"] is JsonObject e)
        {
            foreach (var name in e.Select(p => p.Key).Where(k => members.Any(m => string.Equals(k, m, StringComparison.OrdinalIgnoreCase))).ToList())
            {
                e.Remove(name);
            }
        }

        return node;
    }

    /// <summary>Key of an intent.</summary>
    public static string Of(IntentSubmitted m) => $"intent:{m.IntentId:D}";

    /// <summary>Key of an endorsement.</summary>
    public static string Of(IntentEndorsed m) => $"endorsement:{m.IntentId:D}";

    /// <summary>Key of an execution start.</summary>
    public static string Of(ExecutionStarted m) => $"started:{m.IntentId:D}";

    /// <summary>Key of a heartbeat.</summary>
    public static string Of(ExecutionHeartbeat m) => $"heartbeat:{m.IntentId:D}:{m.Sequence.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Key of a completion.</summary>
    public static string Of(ExecutionCompleted m) => $"completed:{m.IntentId:D}";

    /// <summary>Key of a halt acknowledgement.</summary>
    public static string Of(ExecutionHalted m) => $"halted:{m.IntentId:D}";

    /// <summary>Key of a halt command: by intent when it names one, else by halt id.</summary>
    public static string Of(HaltExecution m) => m.Scope == GovernanceScope.Execution && (m.IntentId ?? ParseGuid(m.Subject)) is { } intent
        ? $"halt:{intent:D}:{m.HaltId:D}"
        : $"halt:{m.HaltId:D}";

    /// <summary>Key of a quarantine.</summary>
    public static string Of(AgentQuarantined m) => m.IntentId is { } intent
        ? $"quarantined:{intent:D}"
        : $"quarantined:{m.Agent}:{Ms(m.QuarantinedAt)}";

    /// <summary>Key of a release.</summary>
    public static string Of(AgentReleased m) => $"released:{m.Agent}:{Ms(m.ReleasedAt)}";

    /// <summary>Key of a trust lapse.</summary>
    public static string Of(TrustLapsed m) => $"lapsed:{m.Scope}:{m.Subject}:{Ms(m.LapsedAt)}";

    /// <summary>Key of a trust restoration.</summary>
    public static string Of(TrustRestored m) => $"restored:{m.Scope}:{m.Subject}:{Ms(m.RestoredAt)}";

    /// <summary>Key of a published policy version.</summary>
    public static string Of(PolicyPublished m) => $"policy:{m.Domain}:{m.Scope}:{m.Epoch.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Key of an applied policy version.</summary>
    public static string Of(PolicySynced m) => $"policy-synced:{m.Domain}:{m.Publisher}:{m.Scope}:{m.Epoch.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Key of a key set.</summary>
    public static string Of(KeySetPublished m) => $"keyset:{m.Domain}:{m.Sequence.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Key of a credential.</summary>
    public static string Of(CredentialIssued m) => $"credential:{m.CredentialId}";

    /// <summary>Key of a cosignature conflict.</summary>
    public static string Of(CosignConflict m) => $"cosign-conflict:{m.Origin}:{m.Size.ToString(CultureInfo.InvariantCulture)}";

    private static string Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);

    private static Guid? ParseGuid(string s) => Guid.TryParse(s, out var g) ? g : null;

    private sealed record LeafDocument<T>(string Type, T Event);
}

/// <summary>Appends run concurrently: the ledger group-commits them.</summary>
public sealed class GovernanceEventRecorderDefinition : ConsumerDefinition<GovernanceEventRecorder>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public GovernanceEventRecorderDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "lineage-recorder");
        ConcurrentMessageLimit = 64;
    }
}
