using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MeshBus.Persistence;

/// <summary>What a domain last heard from a peer, as its Sync recorded it (one row per peer, shared by every replica).</summary>
/// <param name="Peer">The peer domain.</param>
/// <param name="HeartbeatSentAt">The signed issue time of the latest verified heartbeat.</param>
/// <param name="HeartbeatSequence">Its sequence.</param>
/// <param name="KeySetSequence">The key set sequence it announced.</param>
/// <param name="DomainPolicyEpoch">The domain-policy epoch it announced.</param>
/// <param name="EgressPolicyEpoch">The egress-policy epoch it announced.</param>
/// <param name="FederationPolicyDigest">The federation digest it announced.</param>
/// <param name="Lapse">Why trust in the peer is lapsed now (the watchdog's reason name), or null while it is not.</param>
/// <param name="LapseDetail">The lapse's explanation (empty when not lapsed).</param>
public sealed record PeerSyncRow(
    string Peer,
    DateTimeOffset HeartbeatSentAt,
    long HeartbeatSequence,
    long KeySetSequence,
    long DomainPolicyEpoch,
    long EgressPolicyEpoch,
    string FederationPolicyDigest,
    string? Lapse,
    string LapseDetail);

/// <summary>A verified heartbeat of a peer, as it is recorded.</summary>
/// <param name="Peer">The peer domain.</param>
/// <param name="SentAt">Its signed issue time.</param>
/// <param name="Sequence">Its sequence.</param>
/// <param name="KeySetSequence">The announced key set sequence.</param>
/// <param name="DomainPolicyEpoch">The announced domain-policy epoch.</param>
/// <param name="EgressPolicyEpoch">The announced egress-policy epoch.</param>
/// <param name="FederationPolicyDigest">The announced federation digest.</param>
public sealed record PeerHeartbeatRecord(
    string Peer,
    DateTimeOffset SentAt,
    long Sequence,
    long KeySetSequence,
    long DomainPolicyEpoch,
    long EgressPolicyEpoch,
    string FederationPolicyDigest);

/// <summary>The highest policy epoch a peer acknowledged for one publisher and scope.</summary>
/// <param name="Epoch">The epoch.</param>
/// <param name="Digest">Its digest.</param>
/// <param name="SyncedAt">The acknowledgement's signed time (of the first acknowledgement of this epoch).</param>
public sealed record PeerAcknowledgement(long Epoch, string Digest, DateTimeOffset SyncedAt);

/// <summary>
/// Per-peer governance sync state in the domain's database (DESIGN.md §2 layer 2): the latest verified heartbeat of each
/// peer, the policy epochs each peer acknowledged, and whether trust in the peer is lapsed. Sync writes it; every
/// Authorize replica reads it on every decision involving the peer, so all replicas judge a peer on the same view.
/// </summary>
public interface IPeerSyncStore
{
    /// <summary>The peer's row, or null before any heartbeat of it was recorded.</summary>
    Task<PeerSyncRow?> GetAsync(string peer, CancellationToken cancellationToken);

    /// <summary>
    /// Records a verified heartbeat; keeps the one with the latest signed time (replicas and redeliveries may bring them
    /// in any order). True when it became the latest.
    /// </summary>
    Task<bool> RecordHeartbeatAsync(PeerHeartbeatRecord heartbeat, CancellationToken cancellationToken);

    /// <summary>Records a verified <c>PolicySynced</c> of <paramref name="peer"/>; keeps the highest epoch per publisher and scope.</summary>
    Task RecordAcknowledgementAsync(string peer, string publisher, string scope, long epoch, string digest, DateTimeOffset syncedAt, CancellationToken cancellationToken);

    /// <summary>The highest epoch <paramref name="peer"/> acknowledged for <paramref name="publisher"/>'s <paramref name="scope"/>, or null when none.</summary>
    Task<PeerAcknowledgement?> AcknowledgedAsync(string peer, string publisher, string scope, CancellationToken cancellationToken);

    /// <summary>Marks trust in the peer lapsed (<paramref name="reason"/> not null) or restored (null).</summary>
    Task SetLapseAsync(string peer, string? reason, string detail, CancellationToken cancellationToken);
}

/// <summary>What one Authorize replica reported it has loaded, and when it last reported.</summary>
/// <param name="Replica">The replica's id (one per process start).</param>
/// <param name="SeenAt">Its last report.</param>
/// <param name="DomainPolicyEpoch">The domain-policy epoch it decides with (-1 when none).</param>
/// <param name="FederationDigest">The digest of the federation policy it decides with (empty when none).</param>
public sealed record ReplicaLoad(string Replica, DateTimeOffset SeenAt, long DomainPolicyEpoch, string FederationDigest = "");

/// <summary>
/// The Authorize replicas' reports of what they loaded, in the domain's database: each replica reports on start, after
/// every policy it loads and every few seconds; Sync acknowledges an epoch (<c>PolicySynced</c>) only when every replica
/// that reported recently has loaded it.
/// </summary>
public interface IReplicaLoadStore
{
    /// <summary>Records <paramref name="replica"/>'s report.</summary>
    Task ReportAsync(string replica, DateTimeOffset seenAt, long domainPolicyEpoch, string federationDigest, CancellationToken cancellationToken);

    /// <summary>The replicas that reported at or after <paramref name="since"/>.</summary>
    Task<IReadOnlyList<ReplicaLoad>> LiveAsync(DateTimeOffset since, CancellationToken cancellationToken);
}

/// <summary>The store on PostgreSQL (fleet) or an SQLite file (embedded); the SQL is the same on both.</summary>
public sealed class SqlPeerSyncStore : IPeerSyncStore, IReplicaLoadStore
{
    private const string Schema =
        "CREATE TABLE IF NOT EXISTS sync_peer (peer text PRIMARY KEY, sent_at_ms bigint NOT NULL, sequence bigint NOT NULL, " +
        "key_set_sequence bigint NOT NULL, domain_epoch bigint NOT NULL, egress_epoch bigint NOT NULL, federation_digest text NOT NULL, " +
        "lapse text NULL, lapse_detail text NOT NULL DEFAULT ''); " +
        "CREATE TABLE IF NOT EXISTS sync_peer_ack (peer text NOT NULL, publisher text NOT NULL, scope text NOT NULL, epoch bigint NOT NULL, " +
        "digest text NOT NULL, synced_at_ms bigint NOT NULL, PRIMARY KEY (peer, publisher, scope)); " +
        "CREATE TABLE IF NOT EXISTS sync_authorize_replica (replica text PRIMARY KEY, seen_at_ms bigint NOT NULL, domain_epoch bigint NOT NULL, " +
        "federation_digest text NOT NULL DEFAULT '')";

    // A database made before replicas reported their federation policy gets the column (a second run finds it there).
    private const string AddFederationDigest = "ALTER TABLE sync_authorize_replica ADD COLUMN federation_digest text NOT NULL DEFAULT ''";

    private readonly Func<CancellationToken, Task<DbConnection>> _open;
    private readonly SemaphoreSlim? _writeGate;
    private readonly object _schemaGate = new();
    private Task? _schema;

    private SqlPeerSyncStore(Func<CancellationToken, Task<DbConnection>> open, SemaphoreSlim? writeGate)
    {
        _open = open;
        _writeGate = writeGate;
    }

    /// <summary>The store in the PostgreSQL database of <paramref name="dataSource"/> (shared pool; its owner disposes it).</summary>
    public static SqlPeerSyncStore Postgres(NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        return new SqlPeerSyncStore(async ct => await dataSource.OpenConnectionAsync(ct), null);
    }

    /// <summary>The store in SQLite file <paramref name="path"/> (created when missing; writers in this process take turns).</summary>
    public static SqlPeerSyncStore Sqlite(string path)
    {
        var connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
        return new SqlPeerSyncStore(async ct =>
        {
            var connection = new SqliteConnection(connectionString);
            await connection.OpenAsync(ct);
            return connection;
        }, new SemaphoreSlim(1, 1));
    }

    /// <inheritdoc />
    public async Task<PeerSyncRow?> GetAsync(string peer, CancellationToken cancellationToken)
    {
        await SchemaAsync();
        await using var connection = await _open(cancellationToken);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT sent_at_ms, sequence, key_set_sequence, domain_epoch, egress_epoch, federation_digest, lapse, lapse_detail FROM sync_peer WHERE peer = @peer";
        Add(cmd, "peer", peer);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return new PeerSyncRow(peer, DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(0)), reader.GetInt64(1), reader.GetInt64(2),
            reader.GetInt64(3), reader.GetInt64(4), reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetString(7));
    }

    /// <inheritdoc />
    public Task<bool> RecordHeartbeatAsync(PeerHeartbeatRecord heartbeat, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(heartbeat);
        return WriteAsync(
            "INSERT INTO sync_peer (peer, sent_at_ms, sequence, key_set_sequence, domain_epoch, egress_epoch, federation_digest) " +
            "VALUES (@peer, @sent, @seq, @keys, @domain, @egress, @fed) ON CONFLICT (peer) DO UPDATE SET sent_at_ms = excluded.sent_at_ms, " +
            "sequence = excluded.sequence, key_set_sequence = excluded.key_set_sequence, domain_epoch = excluded.domain_epoch, " +
            "egress_epoch = excluded.egress_epoch, federation_digest = excluded.federation_digest " +
            "WHERE sync_peer.sent_at_ms < excluded.sent_at_ms OR (sync_peer.sent_at_ms = excluded.sent_at_ms AND sync_peer.sequence < excluded.sequence)",
            cmd =>
            {
                Add(cmd, "peer", heartbeat.Peer);
                Add(cmd, "sent", heartbeat.SentAt.ToUnixTimeMilliseconds());
                Add(cmd, "seq", heartbeat.Sequence);
                Add(cmd, "keys", heartbeat.KeySetSequence);
                Add(cmd, "domain", heartbeat.DomainPolicyEpoch);
                Add(cmd, "egress", heartbeat.EgressPolicyEpoch);
                Add(cmd, "fed", heartbeat.FederationPolicyDigest);
            },
            cancellationToken);
    }

    /// <inheritdoc />
    public Task RecordAcknowledgementAsync(string peer, string publisher, string scope, long epoch, string digest, DateTimeOffset syncedAt, CancellationToken cancellationToken) =>
        WriteAsync(
            "INSERT INTO sync_peer_ack (peer, publisher, scope, epoch, digest, synced_at_ms) VALUES (@peer, @publisher, @scope, @epoch, @digest, @at) " +
            "ON CONFLICT (peer, publisher, scope) DO UPDATE SET epoch = excluded.epoch, digest = excluded.digest, synced_at_ms = excluded.synced_at_ms " +
            "WHERE sync_peer_ack.epoch < excluded.epoch",
            cmd =>
            {
                Add(cmd, "peer", peer);
                Add(cmd, "publisher", publisher);
                Add(cmd, "scope", scope);
                Add(cmd, "epoch", epoch);
                Add(cmd, "digest", digest);
                Add(cmd, "at", syncedAt.ToUnixTimeMilliseconds());
            },
            cancellationToken);

    /// <inheritdoc />
    public async Task<PeerAcknowledgement?> AcknowledgedAsync(string peer, string publisher, string scope, CancellationToken cancellationToken)
    {
        await SchemaAsync();
        await using var connection = await _open(cancellationToken);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT epoch, digest, synced_at_ms FROM sync_peer_ack WHERE peer = @peer AND publisher = @publisher AND scope = @scope";
        Add(cmd, "peer", peer);
        Add(cmd, "publisher", publisher);
        Add(cmd, "scope", scope);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new PeerAcknowledgement(reader.GetInt64(0), reader.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)))
            : null;
    }

    /// <inheritdoc />
    public async Task SetLapseAsync(string peer, string? reason, string detail, CancellationToken cancellationToken) =>
        // A lapse may come before any heartbeat was recorded (a contradiction in the first statements): the row is made.
        await WriteAsync(
            "INSERT INTO sync_peer (peer, sent_at_ms, sequence, key_set_sequence, domain_epoch, egress_epoch, federation_digest, lapse, lapse_detail) " +
            "VALUES (@peer, 0, 0, 0, 0, 0, '', @lapse, @detail) ON CONFLICT (peer) DO UPDATE SET lapse = excluded.lapse, lapse_detail = excluded.lapse_detail",
            cmd =>
            {
                Add(cmd, "peer", peer);
                Add(cmd, "lapse", (object?)reason ?? DBNull.Value);
                Add(cmd, "detail", detail);
            },
            cancellationToken);

    /// <inheritdoc />
    public Task ReportAsync(string replica, DateTimeOffset seenAt, long domainPolicyEpoch, string federationDigest, CancellationToken cancellationToken) =>
        WriteAsync(
            "INSERT INTO sync_authorize_replica (replica, seen_at_ms, domain_epoch, federation_digest) VALUES (@replica, @seen, @epoch, @federation) " +
            "ON CONFLICT (replica) DO UPDATE SET seen_at_ms = excluded.seen_at_ms, domain_epoch = excluded.domain_epoch, federation_digest = excluded.federation_digest",
            cmd =>
            {
                Add(cmd, "replica", replica);
                Add(cmd, "seen", seenAt.ToUnixTimeMilliseconds());
                Add(cmd, "epoch", domainPolicyEpoch);
                Add(cmd, "federation", federationDigest);
            },
            cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<ReplicaLoad>> LiveAsync(DateTimeOffset since, CancellationToken cancellationToken)
    {
        await SchemaAsync();
        await using var connection = await _open(cancellationToken);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT replica, seen_at_ms, domain_epoch, federation_digest FROM sync_authorize_replica WHERE seen_at_ms >= @since ORDER BY replica";
        Add(cmd, "since", since.ToUnixTimeMilliseconds());
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var live = new List<ReplicaLoad>();
        while (await reader.ReadAsync(cancellationToken))
        {
            live.Add(new ReplicaLoad(reader.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetInt64(2), reader.GetString(3)));
        }

        return live;
    }

    private async Task<bool> WriteAsync(string sql, Action<DbCommand> bind, CancellationToken cancellationToken)
    {
        await SchemaAsync();
        if (_writeGate is not null)
        {
            await _writeGate.WaitAsync(cancellationToken);
        }

        try
        {
            await using var connection = await _open(cancellationToken);
            await using var cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            bind(cmd);
            return await cmd.ExecuteNonQueryAsync(cancellationToken) > 0;
        }
        finally
        {
            _writeGate?.Release();
        }
    }

    /// <summary>Creates the tables once; a failed attempt (database not up yet) is tried again by the next call.</summary>
    private Task SchemaAsync()
    {
        lock (_schemaGate)
        {
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = CreateSchemaAsync();
            }

            return _schema;
        }
    }

    private async Task CreateSchemaAsync()
    {
        await using var connection = await _open(CancellationToken.None);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = connection is SqliteConnection ? "PRAGMA journal_mode=WAL; " + Schema : Schema;
        try
        {
            await cmd.ExecuteNonQueryAsync();
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateTable)
        {
            // Two replicas created it at once.
        }

        await using var alter = connection.CreateCommand();
        alter.CommandText = AddFederationDigest;
        try
        {
            await alter.ExecuteNonQueryAsync();
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.DuplicateColumn)
        {
        }
        catch (SqliteException e) when (e.Message.Contains("duplicate column", StringComparison.OrdinalIgnoreCase))
        {
        }
    }

    private static void Add(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        cmd.Parameters.Add(p);
    }
}
