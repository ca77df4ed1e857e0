using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MeshBus.Federation;

/// <summary>
/// <see cref="IFederationStore"/> on SQLite (embedded: one process, writers serialized in it) or PostgreSQL (fleet: every
/// Sync replica of the domain shares it; the per-link row lock serializes sequence assignment across replicas).
/// </summary>
public sealed class SqlFederationStore : IFederationStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource? _postgres;
    private readonly string? _sqlite;
    private readonly SemaphoreSlim _sqliteWriter = new(1, 1);
    private readonly TimeProvider _time;
    private Task? _schema;

    private readonly bool _ownsPostgres;

    private SqlFederationStore(NpgsqlDataSource? postgres, string? sqlite, TimeProvider? time, bool ownsPostgres = true)
    {
        _postgres = postgres;
        _ownsPostgres = ownsPostgres;
        _sqlite = sqlite;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>A store in the SQLite file <paramref name="path"/>.</summary>
    public static SqlFederationStore Sqlite(string path, TimeProvider? time = null) =>
        new(null, new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString(), time);

    /// <summary>A store in the PostgreSQL database of <paramref name="connectionString"/>.</summary>
    public static SqlFederationStore Postgres(string connectionString, TimeProvider? time = null) => new(NpgsqlDataSource.Create(connectionString), null, time);

    /// <summary>
    /// A store on the process's existing PostgreSQL pool <paramref name="dataSource"/> (a worker's shared pool, so the
    /// bridge adds no pool of its own to the connection budget). The store never disposes it: its owner does.
    /// </summary>
    public static SqlFederationStore Postgres(NpgsqlDataSource dataSource, TimeProvider? time = null) =>
        new(dataSource ?? throw new ArgumentNullException(nameof(dataSource)), null, time, ownsPostgres: false);

    private bool IsPostgres => _postgres is not null;

    private string Blob => IsPostgres ? "BYTEA" : "BLOB";

    /// <inheritdoc />
    public Task InitializeAsync(CancellationToken cancellationToken) => EnsureSchemaAsync(cancellationToken);

    private Task EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        // Every operation waits for the schema once, whichever comes first (the inbound loop or a relay).
        lock (_sqliteWriter)
        {
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = CreateSchemaAsync(cancellationToken);
            }

            return _schema;
        }
    }

    private async Task CreateSchemaAsync(CancellationToken cancellationToken)
    {
        if (!IsPostgres)
        {
            // Outside any transaction: SQLite refuses to change the journal mode inside one ("cannot change into wal
            // mode from within a transaction"), which made every restart of a bridge on an existing file fail here.
            await using var c = await OpenAsync(cancellationToken);
            await ExecuteAsync(c, null, "PRAGMA journal_mode=WAL", cancellationToken);
        }

        await InTransactionAsync(async (c, t) =>
        {
            if (IsPostgres)
            {
                // Replicas starting together must not race on CREATE TABLE.
                await ExecuteAsync(c, t, "SELECT pg_advisory_xact_lock(7317001)", cancellationToken);
            }

            foreach (var ddl in new[]
            {
                "CREATE TABLE IF NOT EXISTS federation_link_out (peer TEXT PRIMARY KEY, last_seq BIGINT NOT NULL)",
                $"CREATE TABLE IF NOT EXISTS federation_outbound (peer TEXT NOT NULL, link_seq BIGINT NOT NULL, source_id TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL, wire {Blob} NOT NULL, expires_at BIGINT NOT NULL, created_at BIGINT NOT NULL, published INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (peer, link_seq), UNIQUE (peer, source_id))",
                "CREATE INDEX IF NOT EXISTS federation_outbound_pending ON federation_outbound (published, expires_at)",
                "CREATE TABLE IF NOT EXISTS federation_seen (sender TEXT NOT NULL, id TEXT NOT NULL, keep_until BIGINT NOT NULL, PRIMARY KEY (sender, id))",
                "CREATE TABLE IF NOT EXISTS federation_link_in (peer TEXT PRIMARY KEY, floor BIGINT NOT NULL)",
                "CREATE TABLE IF NOT EXISTS federation_received (peer TEXT NOT NULL, link_seq BIGINT NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY (peer, link_seq))",
                "CREATE TABLE IF NOT EXISTS federation_intents (intent_id TEXT PRIMARY KEY, peer TEXT NOT NULL, keep_until BIGINT NOT NULL)",
            })
            {
                await ExecuteAsync(c, t, ddl, cancellationToken);
            }

            return 0;
        }, cancellationToken, schema: false);
    }

    /// <inheritdoc />
    public Task<OutboundEntry> AppendOutboundAsync(string peer, string sourceId, Func<long, OutboundEntry> seal, CancellationToken cancellationToken) =>
        InTransactionAsync(async (c, t) =>
        {
            // The link row is locked first, so the check below and the insert are serialized per link across replicas
            // and a redelivered source never burns a linkSeq (a burnt one would look like a gap to the peer).
            var seq = Convert.ToInt64(await ScalarAsync(c, t,
                "INSERT INTO federation_link_out (peer, last_seq) VALUES (@peer, 1) ON CONFLICT (peer) DO UPDATE SET last_seq = federation_link_out.last_seq + 1 RETURNING last_seq",
                cancellationToken, ("peer", peer)), System.Globalization.CultureInfo.InvariantCulture);
            await using (var existing = Command(c, t, "SELECT link_seq, id, type, wire, expires_at FROM federation_outbound WHERE peer = @peer AND source_id = @source", ("peer", peer), ("source", sourceId)))
            await using (var reader = await existing.ExecuteReaderAsync(cancellationToken))
            {
                if (await reader.ReadAsync(cancellationToken))
                {
                    var found = ReadEntry(peer, reader);
                    await reader.DisposeAsync();
                    await ExecuteAsync(c, t, "UPDATE federation_link_out SET last_seq = last_seq - 1 WHERE peer = @peer", cancellationToken, ("peer", peer));
                    return found;
                }
            }

            var entry = seal(seq);
            await ExecuteAsync(c, t,
                "INSERT INTO federation_outbound (peer, link_seq, source_id, id, type, wire, expires_at, created_at, published) VALUES (@peer, @seq, @source, @id, @type, @wire, @exp, @now, 0)",
                cancellationToken, ("peer", peer), ("seq", seq), ("source", sourceId), ("id", entry.Id.ToString("D")), ("type", entry.Type), ("wire", entry.Wire),
                ("exp", entry.ExpiresAt.ToUnixTimeMilliseconds()), ("now", _time.GetUtcNow().ToUnixTimeMilliseconds()));
            return entry;
        }, cancellationToken);

    /// <inheritdoc />
    public Task MarkPublishedAsync(string peer, long linkSeq, CancellationToken cancellationToken) =>
        WriteAsync("UPDATE federation_outbound SET published = 1 WHERE peer = @peer AND link_seq = @seq", cancellationToken, ("peer", peer), ("seq", linkSeq));

    /// <inheritdoc />
    public Task<IReadOnlyList<OutboundEntry>> PendingAsync(DateTimeOffset now, DateTimeOffset createdBefore, int max, CancellationToken cancellationToken) =>
        ReadEntriesAsync($"SELECT peer, link_seq, id, type, wire, expires_at FROM federation_outbound WHERE published = 0 AND expires_at > @now AND created_at < @before ORDER BY peer, link_seq LIMIT {max}",
            cancellationToken, ("now", now.ToUnixTimeMilliseconds()), ("before", createdBefore.ToUnixTimeMilliseconds()));

    /// <inheritdoc />
    public Task<IReadOnlyList<OutboundEntry>> OutboundRangeAsync(string peer, long from, long to, DateTimeOffset now, CancellationToken cancellationToken) =>
        ReadEntriesAsync("SELECT peer, link_seq, id, type, wire, expires_at FROM federation_outbound WHERE peer = @peer AND link_seq BETWEEN @from AND @to AND expires_at > @now ORDER BY link_seq LIMIT 1000",
            cancellationToken, ("peer", peer), ("from", from), ("to", to), ("now", now.ToUnixTimeMilliseconds()));

    /// <inheritdoc />
    public async ValueTask<bool> TryMarkSeenAsync(string from, Guid id, DateTimeOffset keepUntil, CancellationToken cancellationToken = default)
    {
        // A row past its keep-until time is a new acceptance window (its envelope could not verify any more anyway).
        var rows = await WriteCountAsync(
            "INSERT INTO federation_seen (sender, id, keep_until) VALUES (@from, @id, @keep) ON CONFLICT (sender, id) DO UPDATE SET keep_until = @keep WHERE federation_seen.keep_until < @now",
            cancellationToken, ("from", from), ("id", id.ToString("D")), ("keep", keepUntil.ToUnixTimeMilliseconds()), ("now", _time.GetUtcNow().ToUnixTimeMilliseconds()));
        return rows == 1;
    }

    /// <inheritdoc />
    public Task ForgetSeenAsync(string from, Guid id, CancellationToken cancellationToken) =>
        WriteAsync("DELETE FROM federation_seen WHERE sender = @from AND id = @id", cancellationToken, ("from", from), ("id", id.ToString("D")));

    /// <inheritdoc />
    public Task RecordReceivedAsync(string peer, long linkSeq, DateTimeOffset now, CancellationToken cancellationToken) =>
        InTransactionAsync(async (c, t) =>
        {
            // First contact starts the link where the peer is: older history is not requested.
            await ExecuteAsync(c, t, "INSERT INTO federation_link_in (peer, floor) VALUES (@peer, @floor) ON CONFLICT (peer) DO NOTHING", cancellationToken, ("peer", peer), ("floor", linkSeq - 1));
            await ExecuteAsync(c, t, "INSERT INTO federation_received (peer, link_seq, received_at) VALUES (@peer, @seq, @now) ON CONFLICT (peer, link_seq) DO NOTHING",
                cancellationToken, ("peer", peer), ("seq", linkSeq), ("now", now.ToUnixTimeMilliseconds()));
            return 0;
        }, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<LinkGap>> GapsAsync(CancellationToken cancellationToken) =>
        InTransactionAsync<IReadOnlyList<LinkGap>>(async (c, t) =>
        {
            var links = new List<(string Peer, long Floor)>();
            await using (var cmd = Command(c, t, "SELECT peer, floor FROM federation_link_in" + (IsPostgres ? " FOR UPDATE" : "")))
            await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    links.Add((reader.GetString(0), reader.GetInt64(1)));
                }
            }

            var gaps = new List<LinkGap>();
            foreach (var (peer, start) in links)
            {
                var received = new List<(long Seq, long At)>();
                await using (var cmd = Command(c, t, "SELECT link_seq, received_at FROM federation_received WHERE peer = @peer AND link_seq > @floor ORDER BY link_seq LIMIT 10000", ("peer", peer), ("floor", start)))
                await using (var reader = await cmd.ExecuteReaderAsync(cancellationToken))
                {
                    while (await reader.ReadAsync(cancellationToken))
                    {
                        received.Add((reader.GetInt64(0), reader.GetInt64(1)));
                    }
                }

                var floor = start;
                var i = 0;
                while (i < received.Count && received[i].Seq == floor + 1)
                {
                    floor++;
                    i++;
                }

                if (floor != start)
                {
                    await ExecuteAsync(c, t, "UPDATE federation_link_in SET floor = @floor WHERE peer = @peer", cancellationToken, ("peer", peer), ("floor", floor));
                }

                await ExecuteAsync(c, t, "DELETE FROM federation_received WHERE peer = @peer AND link_seq <= @floor", cancellationToken, ("peer", peer), ("floor", floor));
                if (i < received.Count)
                {
                    gaps.Add(new LinkGap(peer, floor + 1, received[i].Seq - 1, DateTimeOffset.FromUnixTimeMilliseconds(received[i].At)));
                }
            }

            return gaps;
        }, cancellationToken);

    /// <inheritdoc />
    public Task SkipAsync(string peer, long throughLinkSeq, CancellationToken cancellationToken) =>
        WriteAsync("UPDATE federation_link_in SET floor = @seq WHERE peer = @peer AND floor < @seq", cancellationToken, ("peer", peer), ("seq", throughLinkSeq));

    /// <inheritdoc />
    public Task RememberIntentAsync(Guid intentId, string peer, DateTimeOffset keepUntil, CancellationToken cancellationToken) =>
        WriteAsync("INSERT INTO federation_intents (intent_id, peer, keep_until) VALUES (@id, @peer, @keep) ON CONFLICT (intent_id) DO UPDATE SET keep_until = @keep",
            cancellationToken, ("id", intentId.ToString("D")), ("peer", peer), ("keep", keepUntil.ToUnixTimeMilliseconds()));

    /// <inheritdoc />
    public async Task<string?> IntentPeerAsync(Guid intentId, CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken);
        await using var c = await OpenAsync(cancellationToken);
        await using var cmd = Command(c, null, "SELECT peer FROM federation_intents WHERE intent_id = @id", ("id", intentId.ToString("D")));
        return await cmd.ExecuteScalarAsync(cancellationToken) as string;
    }

    /// <inheritdoc />
    public Task PruneAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        InTransactionAsync(async (c, t) =>
        {
            var ms = now.ToUnixTimeMilliseconds();
            await ExecuteAsync(c, t, "DELETE FROM federation_seen WHERE keep_until < @now", cancellationToken, ("now", ms));
            await ExecuteAsync(c, t, "DELETE FROM federation_outbound WHERE expires_at < @now", cancellationToken, ("now", ms));
            await ExecuteAsync(c, t, "DELETE FROM federation_intents WHERE keep_until < @now", cancellationToken, ("now", ms));
            return 0;
        }, cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null && _ownsPostgres)
        {
            await _postgres.DisposeAsync();
        }

        _sqliteWriter.Dispose();
    }

    private static OutboundEntry ReadEntry(string peer, DbDataReader r) =>
        new(peer, r.GetInt64(0), Guid.Parse(r.GetString(1)), r.GetString(2), (byte[])r.GetValue(3), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)));

    private async Task<IReadOnlyList<OutboundEntry>> ReadEntriesAsync(string sql, CancellationToken ct, params (string, object)[] args)
    {
        await EnsureSchemaAsync(ct);
        await using var c = await OpenAsync(ct);
        await using var cmd = Command(c, null, sql, args);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var list = new List<OutboundEntry>();
        while (await reader.ReadAsync(ct))
        {
            list.Add(new OutboundEntry(reader.GetString(0), reader.GetInt64(1), Guid.Parse(reader.GetString(2)), reader.GetString(3),
                (byte[])reader.GetValue(4), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5))));
        }

        return list;
    }

    private Task WriteAsync(string sql, CancellationToken ct, params (string, object)[] args) => WriteCountAsync(sql, ct, args);

    private Task<int> WriteCountAsync(string sql, CancellationToken ct, params (string, object)[] args) =>
        InTransactionAsync((c, t) => ExecuteAsync(c, t, sql, ct, args), ct);

    private async Task<T> InTransactionAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken ct, bool schema = true)
    {
        if (schema)
        {
            await EnsureSchemaAsync(ct);
        }

        if (!IsPostgres)
        {
            // SQLite: one writer at a time in this process (its lock waits would block pool threads).
            await _sqliteWriter.WaitAsync(ct);
        }

        try
        {
            await using var c = await OpenAsync(ct);
            await using var t = await c.BeginTransactionAsync(IsolationLevel.ReadCommitted, ct);
            var result = await work(c, t);
            await t.CommitAsync(ct);
            return result;
        }
        finally
        {
            if (!IsPostgres)
            {
                _sqliteWriter.Release();
            }
        }
    }

    private async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(ct);
        }

        var c = new SqliteConnection(_sqlite);
        await c.OpenAsync(ct);
        await using var pragma = c.CreateCommand();
        pragma.CommandText = "PRAGMA busy_timeout=30000; PRAGMA synchronous=FULL;";
        await pragma.ExecuteNonQueryAsync(ct);
        return c;
    }

    private static DbCommand Command(DbConnection c, DbTransaction? t, string sql, params (string Name, object Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = t;
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = "@" + name;
            p.Value = value;
            cmd.Parameters.Add(p);
        }

        return cmd;
    }

    private static async Task<int> ExecuteAsync(DbConnection c, DbTransaction? t, string sql, CancellationToken ct, params (string, object)[] args)
    {
        await using var cmd = Command(c, t, sql, args);
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<object?> ScalarAsync(DbConnection c, DbTransaction t, string sql, CancellationToken ct, params (string, object)[] args)
    {
        await using var cmd = Command(c, t, sql, args);
        return await cmd.ExecuteScalarAsync(ct);
    }
}
