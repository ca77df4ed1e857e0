namespace MeshBus.Ledger;

/// <summary>An event to append to a domain's lineage log.</summary>
/// <param name="Key">Semantic idempotency key, <c>&lt;kind&gt;:&lt;intentId&gt;[:n]</c> (e.g. <c>decision:&lt;intentId&gt;</c>): an entry whose key is already in the log is not appended again.</param>
/// <param name="Type">The event type name (e.g. <c>GrantIssued</c>).</param>
/// <param name="Data">The canonical bytes of the event: exactly the Merkle leaf.</param>
public sealed record LineageEntry(string Key, string Type, byte[] Data);

/// <summary>The outcome of one append, returned only after the entry is committed.</summary>
/// <param name="Index">The entry's index in the log (its existing index when the key was already present).</param>
/// <param name="AlreadyPresent">True when the key was already in the log; nothing was appended.</param>
/// <param name="StoredData">The data stored under the key (compare with what you sent to detect a conflicting duplicate).</param>
/// <param name="StoredType">The type stored under the key.</param>
public sealed record AppendResult(long Index, bool AlreadyPresent, byte[] StoredData, string StoredType);

/// <summary>One committed entry of the log.</summary>
/// <param name="Index">Zero-based index.</param>
/// <param name="Key">Semantic idempotency key.</param>
/// <param name="Type">Event type.</param>
/// <param name="Data">Leaf bytes.</param>
/// <param name="AppendedAt">When it was committed (writer's clock).</param>
public sealed record LineageRecord(long Index, string Key, string Type, byte[] Data, DateTimeOffset AppendedAt);

/// <summary>A tree head: the log's size and its RFC 6962 root hash.</summary>
/// <param name="Size">Number of entries.</param>
/// <param name="RootHash">32-byte root hash (SHA-256 of the empty string for an empty log).</param>
public sealed record TreeHead(long Size, byte[] RootHash);

/// <summary>
/// A domain's append-only, tamper-evident lineage log (RFC 6962). Appends are idempotent by key, group-committed,
/// and acknowledged only after their transaction commits. Several processes may append to one store.
/// </summary>
public interface ILineageLog : IAsyncDisposable
{
    /// <summary>Appends one entry (or returns the existing one with the same key). Completes after commit.</summary>
    Task<AppendResult> AppendAsync(LineageEntry entry, CancellationToken cancellationToken = default);

    /// <summary>Appends several entries in one transaction, in order; results in the same order.</summary>
    Task<IReadOnlyList<AppendResult>> AppendBatchAsync(IReadOnlyList<LineageEntry> entries, CancellationToken cancellationToken = default);

    /// <summary>The entry stored under a key, or null.</summary>
    Task<LineageRecord?> GetByKeyAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>The entry at an index, or null past the end.</summary>
    Task<LineageRecord?> GetAsync(long index, CancellationToken cancellationToken = default);

    /// <summary>Every entry of an intent, in index order: entries whose key is <c>&lt;kind&gt;:&lt;intentId&gt;</c> or <c>&lt;kind&gt;:&lt;intentId&gt;:&lt;n&gt;</c>.</summary>
    Task<IReadOnlyList<LineageRecord>> FindAsync(string intentId, CancellationToken cancellationToken = default);

    /// <summary>The current size and root hash.</summary>
    Task<TreeHead> GetTreeHeadAsync(CancellationToken cancellationToken = default);

    /// <summary>The RFC 6962 inclusion proof of <paramref name="index"/> in the tree of size <paramref name="treeSize"/> (leaf's sibling first).</summary>
    Task<IReadOnlyList<byte[]>> GetInclusionProofAsync(long index, long treeSize, CancellationToken cancellationToken = default);

    /// <summary>The RFC 6962 consistency proof from <paramref name="oldSize"/> to <paramref name="newSize"/>.</summary>
    Task<IReadOnlyList<byte[]>> GetConsistencyProofAsync(long oldSize, long newSize, CancellationToken cancellationToken = default);
}

/// <summary>Options of a lineage log store.</summary>
public sealed class LineageLogOptions
{
    /// <summary>Clock for <see cref="LineageRecord.AppendedAt"/> and checkpoints.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Most entries committed in one transaction by the group-commit writer.</summary>
    public int MaxBatchSize { get; init; } = 4096;

    /// <summary>Tree levels at and above this one are cached in memory once read (complete subtree hashes never change).</summary>
    public int CachedFromLevel { get; init; } = 4;
}

/// <summary>Opens lineage logs on their stores (the schema is created when missing).</summary>
public static class LineageLogs
{
    /// <summary>Opens (or creates) a SQLite lineage log (WAL, <c>synchronous=FULL</c>).</summary>
    public static SqlLineageLog OpenSqlite(string path, LineageLogOptions? options = null) =>
        SqlLineageLog.Open(new Storage.SqliteLedgerStore(path), options ?? new LineageLogOptions());

    /// <summary>
    /// A PostgreSQL lineage log in the database of <paramref name="connectionString"/> without touching the database: its
    /// schema is created on first use. For dependency-injection factories, which must not block on I/O.
    /// </summary>
    public static SqlLineageLog OpenPostgres(string connectionString, LineageLogOptions? options = null) =>
        SqlLineageLog.Open(new Storage.PostgresLedgerStore(connectionString), options ?? new LineageLogOptions());

    /// <summary>Opens (or creates) a PostgreSQL lineage log in the database of <paramref name="connectionString"/>, creating its schema now.</summary>
    public static async Task<SqlLineageLog> OpenPostgresAsync(string connectionString, LineageLogOptions? options = null, CancellationToken cancellationToken = default)
    {
        var store = new Storage.PostgresLedgerStore(connectionString);
        await store.EnsureSchemaAsync(cancellationToken);
        return SqlLineageLog.Open(store, options ?? new LineageLogOptions());
    }
}
