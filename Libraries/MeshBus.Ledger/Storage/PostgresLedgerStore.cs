using System.Runtime.CompilerServices;
using MeshBus.Ledger.Merkle;
using Npgsql;
using NpgsqlTypes;

namespace MeshBus.Ledger.Storage;

/// <summary>
/// PostgreSQL: the append transaction takes <c>SELECT … FOR UPDATE</c> on the single head row, so writers in any
/// process or replica are serialized; <c>idx</c> is the primary key, so a writer that skipped the lock fails.
/// </summary>
internal sealed class PostgresLedgerStore(string connectionString) : LedgerStore
{
    private readonly NpgsqlDataSource _dataSource = NpgsqlDataSource.Create(connectionString);
    private readonly Lock _schemaGate = new();
    private Task? _schema;

    /// <summary>
    /// Creates the schema once, on the first use of the store (so opening it never blocks); a failed attempt (database
    /// not up yet) is retried by the next use instead of being remembered.
    /// </summary>
    public Task EnsureSchemaAsync(CancellationToken ct)
    {
        lock (_schemaGate)
        {
            if (_schema is null || _schema.IsFaulted || _schema.IsCanceled)
            {
                _schema = CreateSchemaAsync();
            }

            return _schema.WaitAsync(ct);
        }
    }

    private async Task CreateSchemaAsync()
    {
        var ct = CancellationToken.None;
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);

        // Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog: serialize schema creation.
        await using (var lockCmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock(7296261651)", conn, tx))
        {
            await lockCmd.ExecuteNonQueryAsync(ct);
        }

        await using var cmd = new NpgsqlCommand(
            Schema("BYTEA", "BIGINT", "") + "\nINSERT INTO lineage_head (id, size, root_hash) VALUES (1, 0, @empty) ON CONFLICT (id) DO NOTHING;",
            conn,
            tx);
        cmd.Parameters.AddWithValue("empty", MerkleTree.EmptyRoot());
        await cmd.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    public override async Task<IAppendTransaction> BeginAppendAsync(CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        var conn = await _dataSource.OpenConnectionAsync(ct);
        try
        {
            var tx = await conn.BeginTransactionAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT size, root_hash FROM lineage_head WHERE id = 1 FOR UPDATE", conn, tx);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            await r.ReadAsync(ct);
            var head = new TreeHead(r.GetInt64(0), (byte[])r[1]);
            return new Transaction(conn, tx, head);
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    public override async Task<TreeHead> GetHeadAsync(CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand("SELECT size, root_hash FROM lineage_head WHERE id = 1");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return new TreeHead(r.GetInt64(0), (byte[])r[1]);
    }

    public override async Task<LineageRecord?> GetByKeyAsync(string key, CancellationToken ct) =>
        (await QueryRecordsAsync("WHERE entry_key = @p", key, ct)).FirstOrDefault();

    public override async Task<LineageRecord?> GetAsync(long index, CancellationToken ct) =>
        (await QueryRecordsAsync("WHERE idx = @p", index, ct)).FirstOrDefault();

    public override async Task<IReadOnlyList<LineageRecord>> FindByIntentAsync(string intentId, CancellationToken ct) =>
        await QueryRecordsAsync("WHERE intent_id = @p ORDER BY idx", intentId, ct);

    private async Task<List<LineageRecord>> QueryRecordsAsync(string where, object p, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand("SELECT idx, entry_key, entry_type, data, appended_at FROM lineage_entry " + where);
        cmd.Parameters.AddWithValue("p", p);
        return await ReadRecordsAsync(cmd, ct);
    }

    private static async Task<List<LineageRecord>> ReadRecordsAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<LineageRecord>();
        while (await r.ReadAsync(ct))
        {
            list.Add(Record(r.GetInt64(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetInt64(4)));
        }

        return list;
    }

    public override async Task<Dictionary<NodeId, byte[]>> ReadNodesAsync(IReadOnlyCollection<NodeId> ids, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var conn = await _dataSource.OpenConnectionAsync(ct);
        return await ReadNodesAsync(conn, null, ids, ct);
    }

    private static async Task<Dictionary<NodeId, byte[]>> ReadNodesAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, IReadOnlyCollection<NodeId> ids, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "SELECT n.level, n.idx, n.hash FROM lineage_node n JOIN unnest(@l, @i) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx",
            conn,
            tx);
        cmd.Parameters.AddWithValue("l", ids.Select(x => x.Level).ToArray());
        cmd.Parameters.AddWithValue("i", ids.Select(x => x.Index).ToArray());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var result = new Dictionary<NodeId, byte[]>(ids.Count);
        while (await r.ReadAsync(ct))
        {
            result[new NodeId(r.GetInt32(0), r.GetInt64(1))] = (byte[])r[2];
        }

        return result;
    }

    public override async IAsyncEnumerable<LineageRecord> ReadEntriesAsync(long fromIndex, [EnumeratorCancellation] CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand("SELECT idx, entry_key, entry_type, data, appended_at FROM lineage_entry WHERE idx >= @p ORDER BY idx");
        cmd.Parameters.AddWithValue("p", fromIndex);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            yield return Record(r.GetInt64(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetInt64(4));
        }
    }

    public override async IAsyncEnumerable<MerkleNode> ReadAllNodesAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand("SELECT level, idx, hash FROM lineage_node ORDER BY level, idx");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            yield return new MerkleNode(new NodeId(r.GetInt32(0), r.GetInt64(1)), (byte[])r[2]);
        }
    }

    public override async Task<bool> AddCheckpointAsync(StoredCheckpoint c, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand(
            "INSERT INTO lineage_checkpoint (size, root_hash, note, created_at) VALUES (@s, @r, @n, @t) ON CONFLICT (size) DO NOTHING");
        cmd.Parameters.AddWithValue("s", c.Size);
        cmd.Parameters.AddWithValue("r", c.RootHash);
        cmd.Parameters.AddWithValue("n", c.Note);
        cmd.Parameters.AddWithValue("t", c.CreatedAt.ToUnixTimeMilliseconds());
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    public override async Task<IReadOnlyList<StoredCheckpoint>> GetCheckpointsAsync(long? size, bool latestOnly, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand("SELECT size, root_hash, note, created_at FROM lineage_checkpoint"
            + (size is null ? "" : " WHERE size = @s")
            + (latestOnly ? " ORDER BY size DESC LIMIT 1" : " ORDER BY size"));
        if (size is not null)
        {
            cmd.Parameters.AddWithValue("s", size.Value);
        }

        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<StoredCheckpoint>();
        while (await r.ReadAsync(ct))
        {
            list.Add(new StoredCheckpoint(r.GetInt64(0), (byte[])r[1], r.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3))));
        }

        return list;
    }

    public override async Task<bool> AddCosignatureAsync(long size, string witness, string signatureLine, DateTimeOffset at, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand(
            "INSERT INTO lineage_cosignature (size, witness, signature_line, created_at) VALUES (@s, @w, @l, @t) ON CONFLICT DO NOTHING");
        cmd.Parameters.AddWithValue("s", size);
        cmd.Parameters.AddWithValue("w", witness);
        cmd.Parameters.AddWithValue("l", signatureLine);
        cmd.Parameters.AddWithValue("t", at.ToUnixTimeMilliseconds());
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    public override async Task<IReadOnlyList<string>> GetCosignaturesAsync(long size, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand("SELECT signature_line FROM lineage_cosignature WHERE size = @s ORDER BY witness, signature_line");
        cmd.Parameters.AddWithValue("s", size);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<string>();
        while (await r.ReadAsync(ct))
        {
            list.Add(r.GetString(0));
        }

        return list;
    }

    public override async Task<WitnessState?> GetWitnessStateAsync(string origin, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand("SELECT size, root_hash, note FROM witness_state WHERE origin = @o");
        cmd.Parameters.AddWithValue("o", origin);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? new WitnessState(origin, r.GetInt64(0), (byte[])r[1], r.GetString(2)) : null;
    }

    public override async Task<bool> CompareAndSwapWitnessStateAsync(string origin, WitnessState? expected, WitnessState next, DateTimeOffset at, CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        await using var cmd = _dataSource.CreateCommand(expected is null
            ? "INSERT INTO witness_state (origin, size, root_hash, note, updated_at) VALUES (@o, @s, @r, @n, @t) ON CONFLICT (origin) DO NOTHING"
            : "UPDATE witness_state SET size = @s, root_hash = @r, note = @n, updated_at = @t WHERE origin = @o AND size = @es AND root_hash = @er");
        cmd.Parameters.AddWithValue("o", origin);
        cmd.Parameters.AddWithValue("s", next.Size);
        cmd.Parameters.AddWithValue("r", next.RootHash);
        cmd.Parameters.AddWithValue("n", next.Note);
        cmd.Parameters.AddWithValue("t", at.ToUnixTimeMilliseconds());
        if (expected is not null)
        {
            cmd.Parameters.AddWithValue("es", expected.Size);
            cmd.Parameters.AddWithValue("er", expected.RootHash);
        }

        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    public override ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private sealed class Transaction(NpgsqlConnection conn, NpgsqlTransaction tx, TreeHead head) : IAppendTransaction
    {
        private bool _done;

        public TreeHead Head { get; } = head;

        public async Task<Dictionary<string, LineageRecord>> FindKeysAsync(IReadOnlyCollection<string> keys, CancellationToken ct)
        {
            await using var cmd = new NpgsqlCommand(
                "SELECT idx, entry_key, entry_type, data, appended_at FROM lineage_entry WHERE entry_key = ANY(@k)",
                conn,
                tx);
            cmd.Parameters.AddWithValue("k", keys.ToArray());
            return (await ReadRecordsAsync(cmd, ct)).ToDictionary(r => r.Key, StringComparer.Ordinal);
        }

        public Task<Dictionary<NodeId, byte[]>> ReadNodesAsync(IReadOnlyCollection<NodeId> ids, CancellationToken ct) =>
            PostgresLedgerStore.ReadNodesAsync(conn, tx, ids, ct);

        public async Task WriteAsync(IReadOnlyList<LineageRecord> entries, IReadOnlyList<MerkleNode> nodes, TreeHead head, CancellationToken ct)
        {
            await using var batch = new NpgsqlBatch(conn, tx);
            var e = new NpgsqlBatchCommand(
                "INSERT INTO lineage_entry (idx, entry_key, intent_id, entry_type, data, appended_at) SELECT * FROM unnest(@i, @k, @n, @t, @d, @a)");
            e.Parameters.AddWithValue("i", entries.Select(x => x.Index).ToArray());
            e.Parameters.AddWithValue("k", entries.Select(x => x.Key).ToArray());
            e.Parameters.Add(new NpgsqlParameter("n", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = entries.Select(x => IntentOf(x.Key)).ToArray() });
            e.Parameters.AddWithValue("t", entries.Select(x => x.Type).ToArray());
            e.Parameters.Add(new NpgsqlParameter("d", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = entries.Select(x => x.Data).ToArray() });
            e.Parameters.AddWithValue("a", entries.Select(x => x.AppendedAt.ToUnixTimeMilliseconds()).ToArray());
            batch.BatchCommands.Add(e);
            var n = new NpgsqlBatchCommand("INSERT INTO lineage_node (level, idx, hash) SELECT * FROM unnest(@l, @i, @h)");
            n.Parameters.AddWithValue("l", nodes.Select(x => x.Id.Level).ToArray());
            n.Parameters.AddWithValue("i", nodes.Select(x => x.Id.Index).ToArray());
            n.Parameters.Add(new NpgsqlParameter("h", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = nodes.Select(x => x.Hash).ToArray() });
            batch.BatchCommands.Add(n);
            var h = new NpgsqlBatchCommand("UPDATE lineage_head SET size = @s, root_hash = @r WHERE id = 1 AND size = @old");
            h.Parameters.AddWithValue("s", head.Size);
            h.Parameters.AddWithValue("r", head.RootHash);
            h.Parameters.AddWithValue("old", Head.Size);
            batch.BatchCommands.Add(h);
            await batch.ExecuteNonQueryAsync(ct);
            if (h.RecordsAffected != 1)
            {
                throw new InvalidOperationException("the log head moved under the append lock");
            }
        }

        public async Task CommitAsync(CancellationToken ct)
        {
            await tx.CommitAsync(ct);
            _done = true;
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                if (!_done)
                {
                    await tx.RollbackAsync();
                }
            }
            finally
            {
                await tx.DisposeAsync();
                await conn.DisposeAsync();
            }
        }
    }
}
