namespace MeshBus.Contracts;

/// <summary>A domain signed a new tree head of its lineage log.</summary>
/// <param name="Domain">The log's domain.</param>
/// <param name="Origin">The checkpoint origin, <c>&lt;domain&gt;/lineage</c>.</param>
/// <param name="Size">Tree size.</param>
/// <param name="RootHash">Base64 RFC 6962 root hash.</param>
/// <param name="Checkpoint">The C2SP tlog-checkpoint signed note text.</param>
/// <param name="PublishedAt">When.</param>
public sealed record CheckpointPublished(string Domain, string Origin, long Size, string RootHash, string Checkpoint, DateTimeOffset PublishedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>Ask a peer's witness to cosign a checkpoint, with a consistency proof from the last size it cosigned.</summary>
/// <param name="Domain">The requesting log's domain.</param>
/// <param name="Origin">The checkpoint origin.</param>
/// <param name="Checkpoint">The signed checkpoint note.</param>
/// <param name="OldSize">The size the witness last cosigned (0 for the first).</param>
/// <param name="ConsistencyProof">Base64 hashes of the RFC 6962 consistency proof from <paramref name="OldSize"/>.</param>
public sealed record CosignRequest(string Domain, string Origin, string Checkpoint, long OldSize, IReadOnlyList<string> ConsistencyProof)
{
    /// <summary>The witness's domain asked (the bridge carries the request to it alone; <c>OldSize</c> is what that witness last cosigned).</summary>
    public string? Witness { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>A witness verified consistency and cosigned a checkpoint.</summary>
/// <param name="Domain">The witness's domain.</param>
/// <param name="Origin">The log's origin.</param>
/// <param name="Size">The cosigned tree size.</param>
/// <param name="Cosignature">The C2SP tlog-cosignature signature line (type 0x04, timestamped).</param>
/// <param name="CosignedAt">When.</param>
public sealed record CheckpointCosigned(string Domain, string Origin, long Size, string Cosignature, DateTimeOffset CosignedAt)
{
    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>The witness refused: its state is at another size (retry from it), or the checkpoints conflict.</summary>
/// <param name="Domain">The witness's domain.</param>
/// <param name="Origin">The log's origin.</param>
/// <param name="Size">The size the witness last cosigned.</param>
/// <param name="Detail">Why.</param>
public sealed record CosignConflict(string Domain, string Origin, long Size, string Detail)
{
    /// <summary>True when the witness holds proof of a fork (two validly signed, inconsistent checkpoints).</summary>
    public bool Fork { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>Ask a domain for the evidence bundle of an intent.</summary>
/// <param name="RequestId">Request id.</param>
/// <param name="Domain">The domain asked.</param>
/// <param name="IntentId">The intent.</param>
public sealed record ProofRequest(Guid RequestId, string Domain, Guid IntentId)
{
    /// <summary>The domain asking (the bridge carries the request from it to <c>Domain</c>, and the answer back).</summary>
    public string? Requester { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}

/// <summary>The evidence bundle (<c>meshbus-evidence/v1</c> JSON) of an intent, or why there is none.</summary>
/// <param name="RequestId">The request answered.</param>
/// <param name="Domain">The answering domain.</param>
/// <param name="IntentId">The intent.</param>
/// <param name="Evidence">The bundle JSON, or null with <paramref name="Error"/>.</param>
/// <param name="Error">Why there is no bundle.</param>
public sealed record ProofResponse(Guid RequestId, string Domain, Guid IntentId, string? Evidence, string? Error)
{
    /// <summary>The domain that asked (<see cref="ProofRequest.Requester"/>): the bridge carries the answer to it.</summary>
    public string? Requester { get; init; }

    /// <summary>Version of this message's shape.</summary>
    public int MessageVersion { get; init; } = 1;
}
