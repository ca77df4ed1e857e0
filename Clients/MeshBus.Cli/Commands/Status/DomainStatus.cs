using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using MeshBus.Contracts;
using MeshBus.Ledger;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MeshBus.Cli.Commands.Status;

/// <summary>
/// What <c>meshbus status</c> reports about one domain, read from its store (the lineage log, the saga store, the
/// Authorize and bridge tables) and its key directory. Every part is a list or a map keyed by name, so that new
/// fields (such as per-peer sync state) are additions, never a change of shape.
/// </summary>
/// <param name="Domain">The domain asked about (empty: every domain found in the store).</param>
/// <param name="Storage">Where it was read: <c>postgres HOST:PORT/DATABASE</c> or <c>sqlite DIR</c>.</param>
/// <param name="Policies">The newest published version of each policy scope, with which publishers applied which epoch.</param>
/// <param name="KeySets">The newest key-set sequence of each domain known (the own one from its key directory).</param>
/// <param name="Peers">Every peer domain the store knows of, with what is stored about its sync and link.</param>
/// <param name="Executions">The intent-lifecycle sagas by state.</param>
/// <param name="Quarantined">The agents quarantined now.</param>
/// <param name="Lineage">The lineage log's size, root and last checkpoint.</param>
public sealed record DomainStatus(
    string Domain,
    string Storage,
    IReadOnlyList<PolicyStatus> Policies,
    IReadOnlyList<KeySetStatus> KeySets,
    IReadOnlyList<PeerStatus> Peers,
    IReadOnlyDictionary<string, long> Executions,
    IReadOnlyList<QuarantineStatus> Quarantined,
    LineageStatus Lineage);

/// <summary>The newest published version of one domain's policy scope.</summary>
/// <param name="Domain">The publishing domain.</param>
/// <param name="Scope">The policy scope.</param>
/// <param name="Epoch">Its epoch.</param>
/// <param name="Digest">Its digest.</param>
/// <param name="PublishedAt">When it was first published (lineage).</param>
/// <param name="AppliedBy">Each publisher of <c>PolicySynced</c> for the scope and the highest epoch it applied.</param>
public sealed record PolicyStatus(string Domain, string Scope, long Epoch, string Digest, DateTimeOffset PublishedAt, IReadOnlyList<PolicyApplied> AppliedBy);

/// <summary>One publisher's acknowledgement of a policy scope.</summary>
/// <param name="Publisher">Who applied it (a domain).</param>
/// <param name="Epoch">The highest epoch it acknowledged.</param>
/// <param name="Digest">That epoch's digest.</param>
public sealed record PolicyApplied(string Publisher, long Epoch, string Digest);

/// <summary>A domain's key-set sequence and where it was read.</summary>
/// <param name="Domain">The domain.</param>
/// <param name="Sequence">The key-set sequence.</param>
/// <param name="Source"><c>keys</c> (the key directory) or <c>lineage</c>.</param>
public sealed record KeySetStatus(string Domain, long Sequence, string Source);

/// <summary>What the store holds about one peer domain.</summary>
/// <param name="Domain">The peer.</param>
/// <param name="Trust">The last trust lapse or restoration recorded for it (null: none).</param>
/// <param name="Link">The bridge's link state with it (null: no bridge store or no traffic).</param>
/// <param name="Sync">The per-peer sync state Sync keeps (null: no heartbeat of the peer recorded).</param>
public sealed record PeerStatus(string Domain, PeerTrust? Trust, PeerLink? Link, PeerSync? Sync);

/// <summary>The per-peer sync state (Sync's <c>sync_peer</c> and <c>sync_peer_ack</c> tables).</summary>
/// <param name="HeartbeatSentAt">The signed time of the peer's latest verified heartbeat.</param>
/// <param name="HeartbeatAgeSeconds">How old that heartbeat was when the status was read.</param>
/// <param name="HeartbeatSequence">Its sequence.</param>
/// <param name="KeySetSequence">The key-set sequence it announced.</param>
/// <param name="DomainPolicyEpoch">The domain-policy epoch it announced.</param>
/// <param name="EgressPolicyEpoch">The egress-policy epoch it announced.</param>
/// <param name="FederationPolicyDigest">The federation digest it announced.</param>
/// <param name="Lapse">Why trust in it is lapsed now (null: not lapsed).</param>
/// <param name="LapseDetail">The lapse's explanation.</param>
/// <param name="Acknowledged">The policy versions it acknowledged, per publisher and scope.</param>
public sealed record PeerSync(
    DateTimeOffset HeartbeatSentAt,
    double HeartbeatAgeSeconds,
    long HeartbeatSequence,
    long KeySetSequence,
    long DomainPolicyEpoch,
    long EgressPolicyEpoch,
    string FederationPolicyDigest,
    string? Lapse,
    string LapseDetail,
    IReadOnlyList<PeerAcknowledged> Acknowledged);

/// <summary>A policy version a peer acknowledged.</summary>
/// <param name="Publisher">The publishing domain.</param>
/// <param name="Scope">The scope.</param>
/// <param name="Epoch">The highest epoch acknowledged.</param>
/// <param name="Digest">Its digest.</param>
/// <param name="SyncedAt">When.</param>
public sealed record PeerAcknowledged(string Publisher, string Scope, long Epoch, string Digest, DateTimeOffset SyncedAt);

/// <summary>The last trust event of a peer.</summary>
/// <param name="State"><c>lapsed</c> or <c>restored</c>.</param>
/// <param name="Reason">The lapse reason (null for a restoration).</param>
/// <param name="At">When.</param>
public sealed record PeerTrust(string State, string? Reason, DateTimeOffset At);

/// <summary>The bridge's link state with a peer.</summary>
/// <param name="LastSentSequence">The last link sequence sent to it.</param>
/// <param name="ReceivedFloor">Every link sequence up to this one was received from it.</param>
/// <param name="LastReceivedSequence">The highest link sequence received from it.</param>
/// <param name="LastReceivedAt">When that was received.</param>
public sealed record PeerLink(long? LastSentSequence, long? ReceivedFloor, long? LastReceivedSequence, DateTimeOffset? LastReceivedAt);

/// <summary>An agent under quarantine.</summary>
/// <param name="Agent">Its subject.</param>
/// <param name="Since">When the quarantine was stored.</param>
public sealed record QuarantineStatus(string Agent, DateTimeOffset Since);

/// <summary>The lineage log.</summary>
/// <param name="Size">Entries.</param>
/// <param name="RootHash">The current root (hex).</param>
/// <param name="LastCheckpoint">The newest checkpoint (null: none yet).</param>
public sealed record LineageStatus(long Size, string RootHash, CheckpointStatus? LastCheckpoint);

/// <summary>A stored checkpoint.</summary>
/// <param name="Size">Its tree size.</param>
/// <param name="At">When it was stored.</param>
public sealed record CheckpointStatus(long Size, DateTimeOffset At)
{
    /// <summary>The witnesses (<c>&lt;domain&gt;/witness</c>) whose cosignature is stored with it (verified before it was stored).</summary>
    public IReadOnlyList<string> CosignedBy { get; init; } = [];
}

/// <summary>Reads a <see cref="DomainStatus"/> from a domain's store.</summary>
public static class DomainStatusReader
{
    /// <summary>The saga type the Enforce worker stores its intent lifecycles under (its full type name).</summary>
    public const string IntentLifecycleSagaType = "MeshBus.Workers.Enforce.Lifecycle.IntentLifecycleState";

    /// <summary>The JSON shape of <c>meshbus status --json</c>.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>
    /// Reads the status from PostgreSQL (<paramref name="postgres"/>, one database for every store) or from the SQLite
    /// files under <paramref name="dataDirectory"/>. <paramref name="keyDirectory"/>, when given, supplies the own
    /// key-set sequence. Stores not created yet read as empty.
    /// </summary>
    public static async Task<DomainStatus> ReadAsync(string? postgres, string? dataDirectory, string domain, string? keyDirectory, CancellationToken ct)
    {
        var source = postgres is not null ? StoreSource.Postgres(postgres) : StoreSource.Sqlite(dataDirectory!);
        var lineageRows = await source.QueryAsync(
            "lineage",
            "SELECT entry_key, entry_type, data, appended_at FROM lineage_entry WHERE entry_type IN ('PolicyPublished', 'PolicySynced', 'KeySetPublished', 'TrustLapsed', 'TrustRestored') ORDER BY idx",
            r => (Key: r.GetString(0), Type: r.GetString(1), Data: (byte[])r[2], At: DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3))),
            ct);

        var published = new Dictionary<(string Domain, string Scope), PolicyStatus>();
        var applied = new Dictionary<(string Domain, string Scope, string Publisher), PolicyApplied>();
        var keySets = new Dictionary<string, KeySetStatus>(StringComparer.Ordinal);
        var trust = new Dictionary<string, PeerTrust>(StringComparer.Ordinal);
        foreach (var row in lineageRows)
        {
            var e = Event(row.Data);
            switch (row.Type)
            {
                case "PolicyPublished":
                    {
                        var key = (Str(e, "domain"), Name<PolicyScope>(e, "scope"));
                        var epoch = Long(e, "epoch");
                        if (!published.TryGetValue(key, out var p) || p.Epoch < epoch)
                        {
                            published[key] = new PolicyStatus(key.Item1, key.Item2, epoch, Str(e, "digest"), row.At, []);
                        }

                        break;
                    }

                case "PolicySynced":
                    {
                        var key = (Str(e, "domain"), Name<PolicyScope>(e, "scope"), Str(e, "publisher"));
                        var epoch = Long(e, "epoch");
                        if (!applied.TryGetValue(key, out var a) || a.Epoch < epoch)
                        {
                            applied[key] = new PolicyApplied(key.Item3, epoch, Str(e, "digest"));
                        }

                        break;
                    }

                case "KeySetPublished":
                    {
                        var d = Str(e, "domain");
                        var sequence = Long(e, "sequence");
                        if (!keySets.TryGetValue(d, out var k) || k.Sequence < sequence)
                        {
                            keySets[d] = new KeySetStatus(d, sequence, "lineage");
                        }

                        break;
                    }

                case "TrustLapsed" when Name<GovernanceScope>(e, "scope") == nameof(GovernanceScope.Peer):
                    trust[Str(e, "subject")] = new PeerTrust("lapsed", Name<GovernanceReason>(e, "reason"), row.At);
                    break;
                case "TrustRestored" when Name<GovernanceScope>(e, "scope") == nameof(GovernanceScope.Peer):
                    trust[Str(e, "subject")] = new PeerTrust("restored", null, row.At);
                    break;
            }
        }

        if (keyDirectory is not null && File.Exists(Path.Combine(keyDirectory, "keyset.json")))
        {
            var own = MeshBus.Trust.DomainKeys.Load(keyDirectory);
            keySets[own.Domain] = new KeySetStatus(own.Domain, own.KeySet.Sequence, "keys");
        }

        var policies = published.Values
            .Where(p => domain.Length == 0 || p.Domain == domain || p.Scope == nameof(PolicyScope.Federation))
            .Select(p => p with
            {
                AppliedBy = applied.Where(a => a.Key.Domain == p.Domain && a.Key.Scope == p.Scope).Select(a => a.Value).OrderBy(a => a.Publisher, StringComparer.Ordinal).ToList(),
            })
            .OrderBy(p => p.Domain, StringComparer.Ordinal).ThenBy(p => p.Scope, StringComparer.Ordinal)
            .ToList();

        var links = await ReadLinksAsync(source, ct);
        var sync = await ReadPeerSyncAsync(source, ct);
        foreach (var (peer, state) in sync)
        {
            if (!keySets.TryGetValue(peer, out var known) || known.Sequence < state.KeySetSequence)
            {
                keySets[peer] = new KeySetStatus(peer, state.KeySetSequence, "heartbeat");
            }
        }

        var peerNames = trust.Keys.Concat(links.Keys).Concat(sync.Keys)
            .Concat(applied.Keys.Select(a => a.Publisher)).Concat(published.Keys.Select(p => p.Domain)).Concat(keySets.Keys)
            .Where(d => d.Length > 0 && d != domain)
            .Distinct(StringComparer.Ordinal).OrderBy(d => d, StringComparer.Ordinal);
        var peers = domain.Length == 0 ? [] : peerNames.Select(d => new PeerStatus(d, trust.GetValueOrDefault(d), links.GetValueOrDefault(d), sync.GetValueOrDefault(d))).ToList();

        var states = source.IsPostgres
            ? "SELECT data->>'currentState', count(*) FROM saga_state WHERE saga_type = @type GROUP BY 1"
            : "SELECT json_extract(data, '$.currentState'), count(*) FROM saga_state WHERE saga_type = @type GROUP BY 1";
        var executions = (await source.QueryAsync("enforce", states, r => (State: r.IsDBNull(0) ? "" : r.GetString(0), Count: r.GetInt64(1)), ct, ("type", IntentLifecycleSagaType)))
            .OrderBy(s => s.State, StringComparer.Ordinal)
            .ToDictionary(s => s.State, s => s.Count, StringComparer.Ordinal);

        var quarantined = await source.QueryAsync(
            "authorize",
            source.IsPostgres
                ? "SELECT agent, changed_at FROM authorize_quarantine WHERE quarantined ORDER BY agent"
                : "SELECT agent, changed_at FROM authorize_quarantine WHERE quarantined <> 0 ORDER BY agent",
            r => new QuarantineStatus(r.GetString(0), source.IsPostgres ? new DateTimeOffset(r.GetDateTime(1), TimeSpan.Zero) : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1))),
            ct);

        var lineage = await ReadLineageAsync(source, ct);
        return new DomainStatus(domain, source.Description, policies, keySets.Values.OrderBy(k => k.Domain, StringComparer.Ordinal).ToList(), peers, executions, quarantined, lineage);
    }

    private static async Task<Dictionary<string, PeerLink>> ReadLinksAsync(StoreSource source, CancellationToken ct)
    {
        var sent = await source.QueryAsync("federation", "SELECT peer, last_seq FROM federation_link_out", r => (Peer: r.GetString(0), Seq: r.GetInt64(1)), ct);
        var floors = await source.QueryAsync("federation", "SELECT peer, floor FROM federation_link_in", r => (Peer: r.GetString(0), Floor: r.GetInt64(1)), ct);
        var received = await source.QueryAsync(
            "federation",
            "SELECT peer, max(link_seq), max(received_at) FROM federation_received GROUP BY peer",
            r => (Peer: r.GetString(0), Seq: r.GetInt64(1), At: DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2))),
            ct);
        var links = new Dictionary<string, PeerLink>(StringComparer.Ordinal);
        foreach (var peer in sent.Select(s => s.Peer).Concat(floors.Select(f => f.Peer)).Concat(received.Select(r => r.Peer)).Distinct(StringComparer.Ordinal))
        {
            var s = sent.Where(x => x.Peer == peer).Select(x => (long?)x.Seq).FirstOrDefault();
            var f = floors.Where(x => x.Peer == peer).Select(x => (long?)x.Floor).FirstOrDefault();
            var r = received.Where(x => x.Peer == peer).Select(x => ((long?)x.Seq, (DateTimeOffset?)x.At)).FirstOrDefault();
            links[peer] = new PeerLink(s, f, r.Item1, r.Item2);
        }

        return links;
    }

    private static async Task<Dictionary<string, PeerSync>> ReadPeerSyncAsync(StoreSource source, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        var acks = (await source.QueryAsync(
                "sync",
                "SELECT peer, publisher, scope, epoch, digest, synced_at_ms FROM sync_peer_ack ORDER BY peer, publisher, scope",
                r => (Peer: r.GetString(0), Ack: new PeerAcknowledged(r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)))),
                ct))
            .ToLookup(a => a.Peer, a => a.Ack, StringComparer.Ordinal);
        var rows = await source.QueryAsync(
            "sync",
            "SELECT peer, sent_at_ms, sequence, key_set_sequence, domain_epoch, egress_epoch, federation_digest, lapse, lapse_detail FROM sync_peer",
            r =>
            {
                var sentAt = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1));
                return (Peer: r.GetString(0), Sync: new PeerSync(
                    sentAt, Math.Round((now - sentAt).TotalSeconds, 1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetString(6),
                    r.IsDBNull(7) ? null : r.GetString(7), r.GetString(8), []));
            },
            ct);
        return rows.ToDictionary(r => r.Peer, r => r.Sync with { Acknowledged = acks[r.Peer].ToList() }, StringComparer.Ordinal);
    }

    private static async Task<LineageStatus> ReadLineageAsync(StoreSource source, CancellationToken ct)
    {
        if (!await source.HasTableAsync("lineage", "lineage_head", ct))
        {
            return new LineageStatus(0, Convert.ToHexStringLower(Ledger.Merkle.MerkleTree.EmptyRoot()), null);
        }

        await using var log = source.IsPostgres
            ? await LineageLogs.OpenPostgresAsync(source.ConnectionString, cancellationToken: ct)
            : LineageLogs.OpenSqlite(source.SqliteFile("lineage")!);
        var head = await log.GetTreeHeadAsync(ct);
        var checkpoint = await log.GetLatestCheckpointAsync(ct);
        if (checkpoint is null)
        {
            return new LineageStatus(head.Size, Convert.ToHexStringLower(head.RootHash), null);
        }

        // "— <name> <base64>": the witness's name is the second token of its cosignature line.
        var cosigned = (await log.GetCosignaturesAsync(checkpoint.Size, ct)).Select(l => l.Split(' ') is { Length: 3 } t ? t[1] : l).Order(StringComparer.Ordinal).ToList();
        return new LineageStatus(head.Size, Convert.ToHexStringLower(head.RootHash), new CheckpointStatus(checkpoint.Size, checkpoint.CreatedAt) { CosignedBy = cosigned });
    }

    // Lineage leaves are {"event": {...}, "type": "..."}; member names are matched regardless of case.
    private static JsonElement Event(byte[] leaf)
    {
        using var document = JsonDocument.Parse(leaf);
        foreach (var p in document.RootElement.EnumerateObject())
        {
            if (p.NameEquals("event") || string.Equals(p.Name, "event", StringComparison.OrdinalIgnoreCase))
            {
                return p.Value.Clone();
            }
        }

        return default;
    }

    private static JsonElement? Member(JsonElement e, string name)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        foreach (var p in e.EnumerateObject())
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return p.Value;
            }
        }

        return null;
    }

    private static string Str(JsonElement e, string name) => Member(e, name) is { } v
        ? v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : v.GetRawText()
        : "";

    // Lineage leaves carry enums as numbers (System.Text.Json's web defaults); the status names them.
    private static string Name<TEnum>(JsonElement e, string name)
        where TEnum : struct, Enum =>
        Member(e, name) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt32(out var n)
            ? Enum.GetName(typeof(TEnum), n) ?? n.ToString(CultureInfo.InvariantCulture)
            : Str(e, name);

    private static long Long(JsonElement e, string name) => Member(e, name) is { } v
        ? v.ValueKind == JsonValueKind.Number ? v.GetInt64() : long.Parse(v.GetString() ?? "0", CultureInfo.InvariantCulture)
        : 0;

    /// <summary>Either one PostgreSQL database or the SQLite files of a data directory.</summary>
    private sealed class StoreSource
    {
        private static readonly Dictionary<string, string> SqliteFiles = new(StringComparer.Ordinal)
        {
            ["lineage"] = "lineage.db",
            ["enforce"] = "enforce.db",
            ["authorize"] = "authorize.db",
            ["federation"] = "federation.db",
            ["sync"] = "sync.db",
        };

        private readonly string? _dataDirectory;

        private StoreSource(string connectionString, string? dataDirectory, string description)
        {
            ConnectionString = connectionString;
            _dataDirectory = dataDirectory;
            Description = description;
        }

        public string ConnectionString { get; }

        public string Description { get; }

        public bool IsPostgres => _dataDirectory is null;

        public static StoreSource Postgres(string connectionString)
        {
            // One short-lived connection at a time, no pool left behind: the status must not eat the domain's budget.
            var b = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false };
            if (b.Timeout == 15)
            {
                b.Timeout = 5;
            }

            return new StoreSource(b.ConnectionString, null, $"postgres {b.Host}:{b.Port}/{b.Database}");
        }

        public static StoreSource Sqlite(string dataDirectory)
        {
            if (!Directory.Exists(dataDirectory))
            {
                throw new CliUsageException($"no data directory at '{dataDirectory}'");
            }

            return new StoreSource("", Path.GetFullPath(dataDirectory), "sqlite " + Path.GetFullPath(dataDirectory));
        }

        public string? SqliteFile(string store)
        {
            var path = Path.Combine(_dataDirectory!, SqliteFiles[store]);
            return File.Exists(path) ? path : null;
        }

        public async Task<bool> HasTableAsync(string store, string table, CancellationToken ct) =>
            (await QueryAsync(store, IsPostgres
                ? "SELECT 1 FROM information_schema.tables WHERE table_name = @table"
                : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = @table", _ => 1, ct, ("table", table))).Count > 0;

        /// <summary>Runs a query against one store; a store or table that does not exist yet gives no rows.</summary>
        public async Task<List<T>> QueryAsync<T>(string store, string sql, Func<DbDataReader, T> map, CancellationToken ct, params (string Name, object Value)[] parameters)
        {
            DbConnection connection;
            if (IsPostgres)
            {
                connection = new NpgsqlConnection(ConnectionString);
            }
            else
            {
                var file = SqliteFile(store);
                if (file is null)
                {
                    return [];
                }

                connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            }

            await using (connection)
            {
                await connection.OpenAsync(ct);
                await using var command = connection.CreateCommand();
                command.CommandText = sql;
                foreach (var (name, value) in parameters)
                {
                    var p = command.CreateParameter();
                    p.ParameterName = name;
                    p.Value = value;
                    command.Parameters.Add(p);
                }

                var rows = new List<T>();
                try
                {
                    await using var reader = await command.ExecuteReaderAsync(ct);
                    while (await reader.ReadAsync(ct))
                    {
                        rows.Add(map(reader));
                    }
                }
                catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
                {
                    // The worker owning this table has not started against this database yet.
                }
                catch (SqliteException e) when (e.Message.Contains("no such table", StringComparison.Ordinal))
                {
                }

                return rows;
            }
        }
    }
}
