using MeshBus.Trust;
using MeshBus.Trust.Notes;

namespace MeshBus.Ledger;

/// <summary>When a new checkpoint is due.</summary>
public sealed class CheckpointPolicy
{
    /// <summary>A checkpoint is due once this many entries were appended since the last one.</summary>
    public int EveryEntries { get; init; } = 1000;

    /// <summary>A checkpoint is due once this much time passed since the last one and the log grew.</summary>
    public TimeSpan EveryInterval { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>Names used by a domain's lineage log.</summary>
public static class LineageNames
{
    /// <summary>The checkpoint origin and log key name of a domain: <c>&lt;domain&gt;/lineage</c>.</summary>
    public static string Origin(string domain) => domain + "/lineage";

    /// <summary>The witness key name of a domain: <c>&lt;domain&gt;/witness</c>.</summary>
    public static string Witness(string domain) => domain + "/witness";
}

/// <summary>
/// Signs and stores C2SP checkpoints of a log when one is due (every N entries or T time, whichever first). The
/// Lineage worker calls <see cref="PublishIfDueAsync"/> on a timer and after appends, and publishes
/// <c>CheckpointPublished</c> for every checkpoint it returns. Several replicas may run it: Ed25519 is deterministic,
/// so they sign the same note for the same tree head, and the store keeps one per size.
/// </summary>
public sealed class CheckpointPublisher(ILineageLog log, ICheckpointStore store, INoteSigner signer, CheckpointPolicy? policy = null, TimeProvider? time = null)
{
    private readonly CheckpointPolicy _policy = policy ?? new CheckpointPolicy();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>The origin (the signer's key name, <c>&lt;domain&gt;/lineage</c>).</summary>
    public string Origin => signer.Name;

    /// <summary>Whether a checkpoint is due for this head, given the last one.</summary>
    public bool IsDue(TreeHead head, StoredCheckpoint? last, DateTimeOffset now) =>
        head.Size > 0 && (last is null || (head.Size > last.Size
            && (head.Size - last.Size >= _policy.EveryEntries || now - last.CreatedAt >= _policy.EveryInterval)));

    /// <summary>How long until the time rule makes a checkpoint due (zero when it already is).</summary>
    public async Task<TimeSpan> NextDueInAsync(CancellationToken cancellationToken = default)
    {
        var last = await store.GetLatestCheckpointAsync(cancellationToken);
        if (last is null)
        {
            return TimeSpan.Zero;
        }

        var left = last.CreatedAt + _policy.EveryInterval - _time.GetUtcNow();
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    /// <summary>Signs and stores a checkpoint of the current head when due; returns it, or null when none was due or another replica stored it first.</summary>
    public async Task<StoredCheckpoint?> PublishIfDueAsync(CancellationToken cancellationToken = default)
    {
        var head = await log.GetTreeHeadAsync(cancellationToken);
        var last = await store.GetLatestCheckpointAsync(cancellationToken);
        return IsDue(head, last, _time.GetUtcNow()) ? await StoreAsync(head, cancellationToken) : null;
    }

    /// <summary>Signs and stores a checkpoint of the current head now (unless one of that size exists); returns the stored one.</summary>
    public async Task<StoredCheckpoint> PublishAsync(CancellationToken cancellationToken = default)
    {
        var head = await log.GetTreeHeadAsync(cancellationToken);
        return await StoreAsync(head, cancellationToken) ?? (await store.GetCheckpointAsync(head.Size, cancellationToken))!;
    }

    private async Task<StoredCheckpoint?> StoreAsync(TreeHead head, CancellationToken ct)
    {
        var note = SignedNote.Sign(new Checkpoint(Origin, head.Size, head.RootHash).ToBody(), signer);
        var cp = new StoredCheckpoint(head.Size, head.RootHash, note, _time.GetUtcNow());
        return await store.AddCheckpointAsync(cp, ct) ? cp : null;
    }
}

/// <summary>Reads stored checkpoints back.</summary>
public static class Checkpoints
{
    /// <summary>Verifies a checkpoint note with the log's keys and parses its body; throws <see cref="NoteVerificationException"/> or <see cref="FormatException"/>.</summary>
    public static (Checkpoint Checkpoint, VerifiedNote Note) Open(string note, string origin, IEnumerable<VerifierKey> logKeys)
    {
        var keys = logKeys.Where(k => k.Name == origin && k.SignatureType == VerifierKey.Ed25519Type).ToList();
        var verified = SignedNote.Open(note, keys);
        var cp = Checkpoint.Parse(verified.Body);
        if (cp.Origin != origin)
        {
            throw new NoteVerificationException($"the checkpoint origin is '{cp.Origin}', not '{origin}'");
        }

        return (cp, verified);
    }
}
