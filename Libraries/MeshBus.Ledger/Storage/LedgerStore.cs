using MeshBus.Ledger.Merkle;

namespace MeshBus.Ledger.Storage;

/// <summary>The SQL behind a lineage log; SQLite and PostgreSQL share one schema (see docs/lineage.md).</summary>
internal abstract class LedgerStore : IAsyncDisposable
{
    public abstract Task<IAppendTransaction> BeginAppendAsync(CancellationToken ct);

    public abstract Task<TreeHead> GetHeadAsync(CancellationToken ct);

    public abstract Task<LineageRecord?> GetByKeyAsync(string key, CancellationToken ct);

    public abstract Task<LineageRecord?> GetAsync(long index, CancellationToken ct);

    public abstract Task<IReadOnlyList<LineageRecord>> FindByIntentAsync(string intentId, CancellationToken ct);

    public abstract Task<Dictionary<NodeId, byte[]>> ReadNodesAsync(IReadOnlyCollection<NodeId> ids, CancellationToken ct);

    /// <summary>Entries in index order from <paramref name="fromIndex"/>, streamed (for the audit).</summary>
    public abstract IAsyncEnumerable<LineageRecord> ReadEntriesAsync(long fromIndex, CancellationToken ct);

    /// <summary>Every stored node, ordered by level then index (for the audit).</summary>
    public abstract IAsyncEnumerable<MerkleNode> ReadAllNodesAsync(CancellationToken ct);

    public abstract Task<bool> AddCheckpointAsync(StoredCheckpoint checkpoint, CancellationToken ct);

    public abstract Task<IReadOnlyList<StoredCheckpoint>> GetCheckpointsAsync(long? size, bool latestOnly, CancellationToken ct);

    public abstract Task<bool> AddCosignatureAsync(long size, string witness, string signatureLine, DateTimeOffset at, CancellationToken ct);

    public abstract Task<IReadOnlyList<string>> GetCosignaturesAsync(long size, CancellationToken ct);

    public abstract Task<WitnessState?> GetWitnessStateAsync(string origin, CancellationToken ct);

    public abstract Task<bool> CompareAndSwapWitnessStateAsync(string origin, WitnessState? expected, WitnessState next, DateTimeOffset at, CancellationToken ct);

    public abstract ValueTask DisposeAsync();

    /// <summary>The intent id of a key <c>kind:intentId[:n]</c>, or null.</summary>
    public static string? IntentOf(string key)
    {
        var parts = key.Split(':');
        return parts.Length >= 2 && parts[1].Length > 0 ? parts[1] : null;
    }

    protected static string Schema(string blob, string int64, string nodeTableSuffix) => $"""
        CREATE TABLE IF NOT EXISTS lineage_head (id INTEGER PRIMARY KEY CHECK (id = 1), size {int64} NOT NULL, root_hash {blob} NOT NULL);
        CREATE TABLE IF NOT EXISTS lineage_entry (idx {int64} PRIMARY KEY, entry_key TEXT NOT NULL UNIQUE, intent_id TEXT NULL, entry_type TEXT NOT NULL, data {blob} NOT NULL, appended_at {int64} NOT NULL);
        CREATE INDEX IF NOT EXISTS lineage_entry_intent ON lineage_entry (intent_id);
        CREATE TABLE IF NOT EXISTS lineage_node (level INTEGER NOT NULL, idx {int64} NOT NULL, hash {blob} NOT NULL, PRIMARY KEY (level, idx)){nodeTableSuffix};
        CREATE TABLE IF NOT EXISTS lineage_checkpoint (size {int64} PRIMARY KEY, root_hash {blob} NOT NULL, note TEXT NOT NULL, created_at {int64} NOT NULL);
        CREATE TABLE IF NOT EXISTS lineage_cosignature (size {int64} NOT NULL, witness TEXT NOT NULL, signature_line TEXT NOT NULL, created_at {int64} NOT NULL, PRIMARY KEY (size, signature_line));
        CREATE TABLE IF NOT EXISTS witness_state (origin TEXT PRIMARY KEY, size {int64} NOT NULL, root_hash {blob} NOT NULL, note TEXT NOT NULL, updated_at {int64} NOT NULL);
        """;

    protected static LineageRecord Record(long idx, string key, string type, byte[] data, long appendedAtMs) =>
        new(idx, key, type, data, DateTimeOffset.FromUnixTimeMilliseconds(appendedAtMs));
}

/// <summary>One append transaction, holding the lock on the log head until commit or dispose (rollback).</summary>
internal interface IAppendTransaction : IAsyncDisposable
{
    TreeHead Head { get; }

    Task<Dictionary<string, LineageRecord>> FindKeysAsync(IReadOnlyCollection<string> keys, CancellationToken ct);

    Task<Dictionary<NodeId, byte[]>> ReadNodesAsync(IReadOnlyCollection<NodeId> ids, CancellationToken ct);

    Task WriteAsync(IReadOnlyList<LineageRecord> entries, IReadOnlyList<MerkleNode> nodes, TreeHead head, CancellationToken ct);

    Task CommitAsync(CancellationToken ct);
}
