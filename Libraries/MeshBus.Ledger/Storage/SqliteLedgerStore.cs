using System.Runtime.CompilerServices;
using MeshBus.Ledger.Merkle;
using Microsoft.Data.Sqlite;

namespace MeshBus.Ledger.Storage;

/// <summary>
/// SQLite: WAL with <c>synchronous=FULL</c> on every connection that writes. The append transaction is
/// <c>BEGIN IMMEDIATE</c> (the lock on the head across processes); in-process there is one writer loop, so no
/// thread blocks on the lock of its own process.
/// </summary>
internal sealed class SqliteLedgerStore : LedgerStore
{
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeGate = new(1, 1);

    public SqliteLedgerStore(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 60,
        }.ToString();
        using var conn = Open();
        using (var wal = conn.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            wal.ExecuteNonQuery();
        }

        using var tx = conn.BeginTransaction();
        using var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = Schema("BLOB", "INTEGER", " WITHOUT ROWID") +
            "\nINSERT OR IGNORE INTO lineage_head (id, size, root_hash) VALUES (1, 0, $empty);";
        cmd.Parameters.AddWithValue("$empty", MerkleTree.EmptyRoot());
        cmd.ExecuteNonQuery();
        tx.Commit();
    }

    private SqliteConnection Open()
    {
        var conn = new SqliteConnection(_connectionString);
        conn.Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "PRAGMA synchronous=FULL;";
        cmd.ExecuteNonQuery();
        return conn;
    }

    public override async Task<IAppendTransaction> BeginAppendAsync(CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct);
        SqliteConnection? conn = null;
        try
        {
            conn = Open();

            // BEGIN IMMEDIATE waits (up to DefaultTimeout) for writers in other processes.
            var tx = conn.BeginTransaction(deferred: false);
            using var cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT size, root_hash FROM lineage_head WHERE id = 1";
            using var r = cmd.ExecuteReader();
            r.Read();
            var head = new TreeHead(r.GetInt64(0), (byte[])r[1]);
            return new Transaction(this, conn, tx, head);
        }
        catch
        {
            conn?.Dispose();
            _writeGate.Release();
            throw;
        }
    }

    public override Task<TreeHead> GetHeadAsync(CancellationToken ct)
    {
        using var conn = Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT size, root_hash FROM lineage_head WHERE id = 1";
        using var r = cmd.ExecuteReader();
        r.Read();
        return Task.FromResult(new TreeHead(r.GetInt64(0), (byte[])r[1]));
    }

    public override Task<LineageRecord?> GetByKeyAsync(string key, CancellationToken ct) =>
        Task.FromResult(QueryRecords("WHERE entry_key = $p", key).FirstOrDefault());

    public override Task<LineageRecord?> GetAsync(long index, CancellationToken ct) =>
        Task.FromResult(QueryRecords("WHERE idx = $p", index).FirstOrDefault());

    public override Task<IReadOnlyList<LineageRecord>> FindByIntentAsync(string intentId, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<LineageRecord>>(QueryRecords("WHERE intent_id = $p ORDER BY idx", intentId));

    private List<LineageRecord> QueryRecords(string where, object p)
    {
        using var conn = Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT idx, entry_key, entry_type, data, appended_at FROM lineage_entry " + where;
        cmd.Parameters.AddWithValue("$p", p);
        using var r = cmd.ExecuteReader();
        var list = new List<LineageRecord>();
        while (r.Read())
        {
            list.Add(Record(r.GetInt64(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetInt64(4)));
        }

        return list;
    }

    public override Task<Dictionary<NodeId, byte[]>> ReadNodesAsync(IReadOnlyCollection<NodeId> ids, CancellationToken ct)
    {
        using var conn = Open();
        return Task.FromResult(ReadNodes(conn, null, ids));
    }

    private static Dictionary<NodeId, byte[]> ReadNodes(SqliteConnection conn, SqliteTransaction? tx, IReadOnlyCollection<NodeId> ids)
    {
        var result = new Dictionary<NodeId, byte[]>(ids.Count);
        using var cmd = conn.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT hash FROM lineage_node WHERE level = $l AND idx = $i";
        var l = cmd.Parameters.Add("$l", SqliteType.Integer);
        var i = cmd.Parameters.Add("$i", SqliteType.Integer);
        cmd.Prepare();
        foreach (var id in ids)
        {
            l.Value = id.Level;
            i.Value = id.Index;
            if (cmd.ExecuteScalar() is byte[] h)
            {
                result[id] = h;
            }
        }

        return result;
    }

    public override async IAsyncEnumerable<LineageRecord> ReadEntriesAsync(long fromIndex, [EnumeratorCancellation] CancellationToken ct)
    {
        using var conn = Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT idx, entry_key, entry_type, data, appended_at FROM lineage_entry WHERE idx >= $p ORDER BY idx";
        cmd.Parameters.AddWithValue("$p", fromIndex);
        using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            yield return Record(r.GetInt64(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetInt64(4));
        }
    }

    public override async IAsyncEnumerable<MerkleNode> ReadAllNodesAsync([EnumeratorCancellation] CancellationToken ct)
    {
        using var conn = Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT level, idx, hash FROM lineage_node ORDER BY level, idx";
        using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            yield return new MerkleNode(new NodeId(r.GetInt32(0), r.GetInt64(1)), (byte[])r[2]);
        }
    }

    public override async Task<bool> AddCheckpointAsync(StoredCheckpoint c, CancellationToken ct) =>
        await WriteAsync(
            "INSERT OR IGNORE INTO lineage_checkpoint (size, root_hash, note, created_at) VALUES ($s, $r, $n, $t)",
            ct,
            ("$s", c.Size),
            ("$r", c.RootHash),
            ("$n", c.Note),
            ("$t", c.CreatedAt.ToUnixTimeMilliseconds())) == 1;

    public override Task<IReadOnlyList<StoredCheckpoint>> GetCheckpointsAsync(long? size, bool latestOnly, CancellationToken ct)
    {
        using var conn = Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT size, root_hash, note, created_at FROM lineage_checkpoint"
            + (size is null ? "" : " WHERE size = $s")
            + (latestOnly ? " ORDER BY size DESC LIMIT 1" : " ORDER BY size");
        if (size is not null)
        {
            cmd.Parameters.AddWithValue("$s", size.Value);
        }

        using var r = cmd.ExecuteReader();
        var list = new List<StoredCheckpoint>();
        while (r.Read())
        {
            list.Add(new StoredCheckpoint(r.GetInt64(0), (byte[])r[1], r.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3))));
        }

        return Task.FromResult<IReadOnlyList<StoredCheckpoint>>(list);
    }

    public override async Task<bool> AddCosignatureAsync(long size, string witness, string signatureLine, DateTimeOffset at, CancellationToken ct) =>
        await WriteAsync(
            "INSERT OR IGNORE INTO lineage_cosignature (size, witness, signature_line, created_at) VALUES ($s, $w, $l, $t)",
            ct,
            ("$s", size),
            ("$w", witness),
            ("$l", signatureLine),
            ("$t", at.ToUnixTimeMilliseconds())) == 1;

    public override Task<IReadOnlyList<string>> GetCosignaturesAsync(long size, CancellationToken ct)
    {
        using var conn = Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT signature_line FROM lineage_cosignature WHERE size = $s ORDER BY witness, signature_line";
        cmd.Parameters.AddWithValue("$s", size);
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read())
        {
            list.Add(r.GetString(0));
        }

        return Task.FromResult<IReadOnlyList<string>>(list);
    }

    public override Task<WitnessState?> GetWitnessStateAsync(string origin, CancellationToken ct)
    {
        using var conn = Open();
        using var cmd = conn.CreateCommand();
        cmd.CommandText = "SELECT size, root_hash, note FROM witness_state WHERE origin = $o";
        cmd.Parameters.AddWithValue("$o", origin);
        using var r = cmd.ExecuteReader();
        return Task.FromResult(r.Read() ? new WitnessState(origin, r.GetInt64(0), (byte[])r[1], r.GetString(2)) : null);
    }

    public override async Task<bool> CompareAndSwapWitnessStateAsync(string origin, WitnessState? expected, WitnessState next, DateTimeOffset at, CancellationToken ct) =>
        expected is null
            ? await WriteAsync(
                "INSERT OR IGNORE INTO witness_state (origin, size, root_hash, note, updated_at) VALUES ($o, $s, $r, $n, $t)",
                ct,
                ("$o", origin),
                ("$s", next.Size),
                ("$r", next.RootHash),
                ("$n", next.Note),
                ("$t", at.ToUnixTimeMilliseconds())) == 1
            : await WriteAsync(
                "UPDATE witness_state SET size = $s, root_hash = $r, note = $n, updated_at = $t WHERE origin = $o AND size = $es AND root_hash = $er",
                ct,
                ("$o", origin),
                ("$s", next.Size),
                ("$r", next.RootHash),
                ("$n", next.Note),
                ("$t", at.ToUnixTimeMilliseconds()),
                ("$es", expected.Size),
                ("$er", expected.RootHash)) == 1;

    private async Task<int> WriteAsync(string sql, CancellationToken ct, params (string Name, object Value)[] args)
    {
        await _writeGate.WaitAsync(ct);
        try
        {
            using var conn = Open();
            using var tx = conn.BeginTransaction(deferred: false);
            using var cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            foreach (var (n, v) in args)
            {
                cmd.Parameters.AddWithValue(n, v);
            }

            var rows = cmd.ExecuteNonQuery();
            tx.Commit();
            return rows;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public override ValueTask DisposeAsync()
    {
        _writeGate.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
        return ValueTask.CompletedTask;
    }

    private sealed class Transaction(SqliteLedgerStore store, SqliteConnection conn, SqliteTransaction tx, TreeHead head) : IAppendTransaction
    {
        private bool _done;

        public TreeHead Head { get; } = head;

        public Task<Dictionary<string, LineageRecord>> FindKeysAsync(IReadOnlyCollection<string> keys, CancellationToken ct)
        {
            var found = new Dictionary<string, LineageRecord>(StringComparer.Ordinal);
            using var cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT idx, entry_key, entry_type, data, appended_at FROM lineage_entry WHERE entry_key = $k";
            var k = cmd.Parameters.Add("$k", SqliteType.Text);
            cmd.Prepare();
            foreach (var key in keys)
            {
                k.Value = key;
                using var r = cmd.ExecuteReader();
                if (r.Read())
                {
                    found[key] = Record(r.GetInt64(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetInt64(4));
                }
            }

            return Task.FromResult(found);
        }

        public Task<Dictionary<NodeId, byte[]>> ReadNodesAsync(IReadOnlyCollection<NodeId> ids, CancellationToken ct) =>
            Task.FromResult(ReadNodes(conn, tx, ids));

        public Task WriteAsync(IReadOnlyList<LineageRecord> entries, IReadOnlyList<MerkleNode> nodes, TreeHead head, CancellationToken ct)
        {
            using (var cmd = conn.CreateCommand())
            {
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO lineage_entry (idx, entry_key, intent_id, entry_type, data, appended_at) VALUES ($i, $k, $n, $t, $d, $a)";
                var i = cmd.Parameters.Add("$i", SqliteType.Integer);
                var k = cmd.Parameters.Add("$k", SqliteType.Text);
                var n = cmd.Parameters.Add("$n", SqliteType.Text);
                var t = cmd.Parameters.Add("$t", SqliteType.Text);
                var d = cmd.Parameters.Add("$d", SqliteType.Blob);
                var a = cmd.Parameters.Add("$a", SqliteType.Integer);
                cmd.Prepare();
                foreach (var e in entries)
                {
                    i.Value = e.Index;
                    k.Value = e.Key;
                    n.Value = (object?)IntentOf(e.Key) ?? DBNull.Value;
                    t.Value = e.Type;
                    d.Value = e.Data;
                    a.Value = e.AppendedAt.ToUnixTimeMilliseconds();
                    cmd.ExecuteNonQuery();
                }
            }

            using (var cmd = conn.CreateCommand())
            {
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO lineage_node (level, idx, hash) VALUES ($l, $i, $h)";
                var l = cmd.Parameters.Add("$l", SqliteType.Integer);
                var i = cmd.Parameters.Add("$i", SqliteType.Integer);
                var h = cmd.Parameters.Add("$h", SqliteType.Blob);
                cmd.Prepare();
                foreach (var node in nodes)
                {
                    l.Value = node.Id.Level;
                    i.Value = node.Id.Index;
                    h.Value = node.Hash;
                    cmd.ExecuteNonQuery();
                }
            }

            using (var cmd = conn.CreateCommand())
            {
                cmd.Transaction = tx;
                cmd.CommandText = "UPDATE lineage_head SET size = $s, root_hash = $r WHERE id = 1 AND size = $old";
                cmd.Parameters.AddWithValue("$s", head.Size);
                cmd.Parameters.AddWithValue("$r", head.RootHash);
                cmd.Parameters.AddWithValue("$old", Head.Size);
                if (cmd.ExecuteNonQuery() != 1)
                {
                    throw new InvalidOperationException("the log head moved under the append lock");
                }
            }

            return Task.CompletedTask;
        }

        public Task CommitAsync(CancellationToken ct)
        {
            tx.Commit();
            _done = true;
            return Task.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            try
            {
                if (!_done)
                {
                    tx.Rollback();
                }
            }
            finally
            {
                tx.Dispose();
                conn.Dispose();
                store._writeGate.Release();
            }

            return ValueTask.CompletedTask;
        }
    }
}
