using System.Collections.Concurrent;
using System.Threading.Channels;
using MeshBus.Ledger.Merkle;
using MeshBus.Ledger.Storage;

namespace MeshBus.Ledger;

/// <summary>
/// The lineage log on a SQL store. Appends go through one writer loop per instance: whatever is queued when the
/// loop wakes is committed in one transaction (group commit) under the lock on the log head, and each caller is
/// answered only after that commit. Other processes may append to the same store; the head lock orders them and
/// <c>UNIQUE(idx)</c> is the fence.
/// </summary>
public sealed class SqlLineageLog : ILineageLog, ICheckpointStore, IWitnessStateStore
{
    private readonly LedgerStore _store;
    private readonly LineageLogOptions _options;
    private readonly Channel<PendingAppend> _queue = Channel.CreateUnbounded<PendingAppend>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<NodeId, byte[]> _cache = new();
    private readonly Task _writer;

    private SqlLineageLog(LedgerStore store, LineageLogOptions options)
    {
        _store = store;
        _options = options;
        _writer = Task.Run(WriteLoopAsync);
    }

    internal static SqlLineageLog Open(LedgerStore store, LineageLogOptions options) => new(store, options);

    internal LedgerStore Store => _store;

    /// <inheritdoc />
    public async Task<AppendResult> AppendAsync(LineageEntry entry, CancellationToken cancellationToken = default) =>
        (await AppendBatchAsync([entry], cancellationToken))[0];

    /// <inheritdoc />
    public Task<IReadOnlyList<AppendResult>> AppendBatchAsync(IReadOnlyList<LineageEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var e in entries)
        {
            Validate(e);
        }

        if (entries.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<AppendResult>>([]);
        }

        var pending = new PendingAppend(entries, cancellationToken);
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(SqlLineageLog));
        }

        // A cancelled wait does not un-append: the entry may still commit, and redelivery is idempotent by key.
        return pending.Completion.Task.WaitAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task<LineageRecord?> GetByKeyAsync(string key, CancellationToken cancellationToken = default) => _store.GetByKeyAsync(key, cancellationToken);

    /// <inheritdoc />
    public Task<LineageRecord?> GetAsync(long index, CancellationToken cancellationToken = default) => _store.GetAsync(index, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<LineageRecord>> FindAsync(string intentId, CancellationToken cancellationToken = default) => _store.FindByIntentAsync(intentId, cancellationToken);

    /// <inheritdoc />
    public Task<TreeHead> GetTreeHeadAsync(CancellationToken cancellationToken = default) => _store.GetHeadAsync(cancellationToken);

    /// <inheritdoc />
    public async Task<IReadOnlyList<byte[]>> GetInclusionProofAsync(long index, long treeSize, CancellationToken cancellationToken = default)
    {
        var nodes = await NodesAsync(ProofBuilder.InclusionNodes(index, treeSize), treeSize, cancellationToken);
        return ProofBuilder.Inclusion(index, treeSize, id => nodes[id]);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<byte[]>> GetConsistencyProofAsync(long oldSize, long newSize, CancellationToken cancellationToken = default)
    {
        var nodes = await NodesAsync(ProofBuilder.ConsistencyNodes(oldSize, newSize), newSize, cancellationToken);
        return ProofBuilder.Consistency(oldSize, newSize, id => nodes[id]);
    }

    /// <summary>The root hash of the tree at an earlier (or the current) size, from stored nodes.</summary>
    public async Task<byte[]> GetRootAsync(long treeSize, CancellationToken cancellationToken = default)
    {
        if (treeSize == 0)
        {
            return MerkleTree.EmptyRoot();
        }

        var nodes = await NodesAsync(ProofBuilder.RootNodes(treeSize), treeSize, cancellationToken);
        return ProofBuilder.RangeHash(0, treeSize, id => nodes[id]);
    }

    /// <inheritdoc />
    public Task<bool> AddCheckpointAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken = default) =>
        _store.AddCheckpointAsync(checkpoint, cancellationToken);

    /// <inheritdoc />
    public async Task<StoredCheckpoint?> GetLatestCheckpointAsync(CancellationToken cancellationToken = default) =>
        (await _store.GetCheckpointsAsync(null, true, cancellationToken)).FirstOrDefault();

    /// <inheritdoc />
    public async Task<StoredCheckpoint?> GetCheckpointAsync(long size, CancellationToken cancellationToken = default) =>
        (await _store.GetCheckpointsAsync(size, false, cancellationToken)).FirstOrDefault();

    /// <inheritdoc />
    public Task<IReadOnlyList<StoredCheckpoint>> GetCheckpointsAsync(CancellationToken cancellationToken = default) =>
        _store.GetCheckpointsAsync(null, false, cancellationToken);

    /// <inheritdoc />
    public Task<bool> AddCosignatureAsync(long size, string witnessName, string signatureLine, CancellationToken cancellationToken = default) =>
        _store.AddCosignatureAsync(size, witnessName, signatureLine, _options.TimeProvider.GetUtcNow(), cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> GetCosignaturesAsync(long size, CancellationToken cancellationToken = default) =>
        _store.GetCosignaturesAsync(size, cancellationToken);

    /// <inheritdoc />
    public Task<WitnessState?> GetWitnessStateAsync(string origin, CancellationToken cancellationToken = default) =>
        _store.GetWitnessStateAsync(origin, cancellationToken);

    /// <inheritdoc />
    public Task<bool> CompareAndSwapWitnessStateAsync(string origin, WitnessState? expected, WitnessState next, CancellationToken cancellationToken = default) =>
        _store.CompareAndSwapWitnessStateAsync(origin, expected, next, _options.TimeProvider.GetUtcNow(), cancellationToken);

    /// <summary>Entries in index order, streamed (audits, exports).</summary>
    public IAsyncEnumerable<LineageRecord> ReadEntriesAsync(long fromIndex = 0, CancellationToken cancellationToken = default) =>
        _store.ReadEntriesAsync(fromIndex, cancellationToken);

    /// <summary>Every stored Merkle node, by level then index (audits).</summary>
    public IAsyncEnumerable<MerkleNode> ReadStoredNodesAsync(CancellationToken cancellationToken = default) =>
        _store.ReadAllNodesAsync(cancellationToken);

    /// <summary>Stops the writer after the queued appends are committed, then closes the store.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_queue.Writer.TryComplete())
        {
            try
            {
                await _writer;
            }
            finally
            {
                await _store.DisposeAsync();
            }
        }
    }

    private static void Validate(LineageEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (string.IsNullOrEmpty(e.Key) || string.IsNullOrEmpty(e.Type) || e.Data is null)
        {
            throw new ArgumentException("a lineage entry needs a key, a type and data");
        }
    }

    private async Task<Dictionary<NodeId, byte[]>> NodesAsync(IReadOnlyCollection<NodeId> ids, long treeSize, CancellationToken ct)
    {
        var result = new Dictionary<NodeId, byte[]>(ids.Count);
        List<NodeId>? missing = null;
        foreach (var id in ids)
        {
            if (_cache.TryGetValue(id, out var h))
            {
                result[id] = h;
            }
            else
            {
                (missing ??= []).Add(id);
            }
        }

        if (missing is not null)
        {
            var read = await _store.ReadNodesAsync(missing, ct);
            foreach (var id in missing)
            {
                if (!read.TryGetValue(id, out var h))
                {
                    var head = await _store.GetHeadAsync(ct);
                    if (treeSize > head.Size)
                    {
                        throw new ArgumentOutOfRangeException(nameof(treeSize), $"the log has {head.Size} entries, not {treeSize}");
                    }

                    throw new InvalidDataException($"the store lacks Merkle node level {id.Level} index {id.Index}: it is damaged");
                }

                result[id] = h;
                Remember(id, h);
            }
        }

        return result;
    }

    private void Remember(NodeId id, byte[] hash)
    {
        if (id.Level >= _options.CachedFromLevel)
        {
            _cache.TryAdd(id, hash);
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<PendingAppend>();
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            var count = 0;
            while (count < _options.MaxBatchSize && reader.TryRead(out var p))
            {
                if (p.Cancellation.IsCancellationRequested)
                {
                    p.Completion.TrySetCanceled(p.Cancellation);
                    continue;
                }

                batch.Add(p);
                count += p.Entries.Count;
            }

            if (batch.Count == 0)
            {
                continue;
            }

            try
            {
                var results = await CommitAsync(batch);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Completion.TrySetResult(results[i]);
                }
            }
            catch (Exception e)
            {
                foreach (var p in batch)
                {
                    p.Completion.TrySetException(e);
                }
            }
        }
    }

    private async Task<List<IReadOnlyList<AppendResult>>> CommitAsync(List<PendingAppend> batch)
    {
        var ct = CancellationToken.None;
        await using var tx = await _store.BeginAppendAsync(ct);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in batch)
        {
            foreach (var e in p.Entries)
            {
                keys.Add(e.Key);
            }
        }

        var known = await tx.FindKeysAsync(keys, ct);
        var size = tx.Head.Size;
        var borderIds = CompactRange.BorderOf(size);
        var border = new Dictionary<NodeId, byte[]>();
        var toRead = new List<NodeId>();
        foreach (var id in borderIds)
        {
            if (_cache.TryGetValue(id, out var h))
            {
                border[id] = h;
            }
            else
            {
                toRead.Add(id);
            }
        }

        if (toRead.Count > 0)
        {
            foreach (var (id, h) in await tx.ReadNodesAsync(toRead, ct))
            {
                border[id] = h;
            }
        }

        var range = new CompactRange(size, borderIds.Select(id => new MerkleNode(id, border.TryGetValue(id, out var h) ? h : throw new InvalidDataException($"the store lacks border node level {id.Level} index {id.Index}"))));
        var closed = new List<MerkleNode>();
        var rows = new List<LineageRecord>();
        var now = _options.TimeProvider.GetUtcNow();
        now = DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds());
        var results = new List<IReadOnlyList<AppendResult>>(batch.Count);
        foreach (var p in batch)
        {
            var r = new AppendResult[p.Entries.Count];
            for (var i = 0; i < r.Length; i++)
            {
                var e = p.Entries[i];
                if (known.TryGetValue(e.Key, out var existing))
                {
                    r[i] = new AppendResult(existing.Index, true, existing.Data, existing.Type);
                    continue;
                }

                var record = new LineageRecord(range.Size, e.Key, e.Type, e.Data.ToArray(), now);
                known[e.Key] = record;
                rows.Add(record);
                range.Append(MerkleTree.LeafHash(record.Data), closed);
                r[i] = new AppendResult(record.Index, false, record.Data, record.Type);
            }

            results.Add(r);
        }

        if (rows.Count > 0)
        {
            await tx.WriteAsync(rows, closed, new TreeHead(range.Size, range.Root()), ct);
        }

        await tx.CommitAsync(ct);
        foreach (var n in closed)
        {
            Remember(n.Id, n.Hash);
        }

        return results;
    }

    private sealed class PendingAppend(IReadOnlyList<LineageEntry> entries, CancellationToken cancellation)
    {
        public IReadOnlyList<LineageEntry> Entries { get; } = entries;

        public CancellationToken Cancellation { get; } = cancellation;

        public TaskCompletionSource<IReadOnlyList<AppendResult>> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
