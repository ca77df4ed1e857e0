namespace MeshBus.Ledger;

/// <summary>A signed checkpoint kept with the log.</summary>
/// <param name="Size">Tree size.</param>
/// <param name="RootHash">Root hash at that size.</param>
/// <param name="Note">The C2SP signed note text (log signature only; cosignatures are kept apart).</param>
/// <param name="CreatedAt">When it was signed.</param>
public sealed record StoredCheckpoint(long Size, byte[] RootHash, string Note, DateTimeOffset CreatedAt);

/// <summary>What a witness last cosigned for one log origin.</summary>
/// <param name="Origin">The log's origin.</param>
/// <param name="Size">Cosigned tree size.</param>
/// <param name="RootHash">Cosigned root hash.</param>
/// <param name="Note">The checkpoint note that was cosigned (kept as evidence).</param>
public sealed record WitnessState(string Origin, long Size, byte[] RootHash, string Note);

/// <summary>Signed checkpoints and their witness cosignatures, stored beside the log.</summary>
public interface ICheckpointStore
{
    /// <summary>Stores a checkpoint; false when one of that size is already stored (the first is kept).</summary>
    Task<bool> AddCheckpointAsync(StoredCheckpoint checkpoint, CancellationToken cancellationToken = default);

    /// <summary>The checkpoint with the largest size, or null.</summary>
    Task<StoredCheckpoint?> GetLatestCheckpointAsync(CancellationToken cancellationToken = default);

    /// <summary>The checkpoint of one size, or null.</summary>
    Task<StoredCheckpoint?> GetCheckpointAsync(long size, CancellationToken cancellationToken = default);

    /// <summary>Every stored checkpoint, by size.</summary>
    Task<IReadOnlyList<StoredCheckpoint>> GetCheckpointsAsync(CancellationToken cancellationToken = default);

    /// <summary>Stores a witness's cosignature line (<c>— name base64</c>) of the checkpoint of <paramref name="size"/> (the <c>CheckpointCosigned</c> seam); false when already stored.</summary>
    Task<bool> AddCosignatureAsync(long size, string witnessName, string signatureLine, CancellationToken cancellationToken = default);

    /// <summary>The cosignature lines stored for a checkpoint size.</summary>
    Task<IReadOnlyList<string>> GetCosignaturesAsync(long size, CancellationToken cancellationToken = default);
}

/// <summary>A witness's durable state per log origin, updated only by compare-and-swap.</summary>
public interface IWitnessStateStore
{
    /// <summary>The state for a log, or null before its first cosignature.</summary>
    Task<WitnessState?> GetWitnessStateAsync(string origin, CancellationToken cancellationToken = default);

    /// <summary>Replaces the state only if it still equals <paramref name="expected"/> (null: none yet); false when another writer won.</summary>
    Task<bool> CompareAndSwapWitnessStateAsync(string origin, WitnessState? expected, WitnessState next, CancellationToken cancellationToken = default);
}
