using System.Collections.Concurrent;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust.Notes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Lineage.Witnessing;

/// <summary>
/// The log side of witnessing: for each checkpoint this domain publishes, asks every pinned peer's witness to cosign
/// it (<see cref="CosignRequest"/> addressed to that witness, with a consistency proof from the last size it cosigned);
/// stores a returned cosignature with the checkpoint only after verifying it with the peer's witness key; on
/// <see cref="CosignConflict"/> retries from the size the witness names (once per size and checkpoint, so a witness
/// that keeps refusing cannot loop it). A fork reported by a witness is logged; the witness lapses its trust.
/// </summary>
public sealed class CosignRequester(
    ILineageLog log,
    WitnessKeys keys,
    CosignAttempts attempts,
    IOptions<MeshBusOptions> mesh,
    ILogger<CosignRequester> logger) : IConsumer<CheckpointPublished>, IConsumer<CheckpointCosigned>, IConsumer<CosignConflict>
{
    /// <summary>How many recent checkpoints are searched for a witness's last cosignature (older ones: it answers with its size).</summary>
    public const int SearchDepth = 64;

    private string Self => mesh.Value.Domain;

    private string Origin => LineageNames.Origin(Self);

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<CheckpointPublished> context)
    {
        var m = context.Message;
        if (m.Domain != Self || m.Origin != Origin)
        {
            return; // a peer's checkpoint relayed here is its witness's business, not ours
        }

        foreach (var peer in keys.Peers)
        {
            if (keys.WitnessKeysOf(peer).Count == 0)
            {
                continue; // a peer without a witness key in its accepted key set cannot cosign
            }

            var oldSize = await LastCosignedSizeAsync(peer, m.Size, context.CancellationToken);
            if (oldSize >= m.Size)
            {
                continue;
            }

            await AskAsync(context, peer, m.Checkpoint, m.Size, oldSize);
        }
    }

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<CheckpointCosigned> context)
    {
        var m = context.Message;
        if (m.Origin != Origin || m.Domain == Self)
        {
            return;
        }

        var store = Checkpoints();
        var checkpoint = await store.GetCheckpointAsync(m.Size, context.CancellationToken)
            ?? throw new MalformedMessageException(typeof(CheckpointCosigned), [$"{m.Domain} cosigned size {m.Size} of {m.Origin}, which this domain never checkpointed"]);
        var witnessKeys = keys.WitnessKeysOf(m.Domain);
        try
        {
            // Only the peer's witness keys are known here: the note opens only if its cosignature verifies.
            _ = SignedNote.Open(SignedNote.AddSignatures(checkpoint.Note, [m.Cosignature]), witnessKeys);
        }
        catch (Exception e) when (e is NoteVerificationException or FormatException)
        {
            throw new MalformedMessageException(typeof(CheckpointCosigned), [$"cosignature of {m.Origin} size {m.Size} by {m.Domain} refused: {e.Message}"]);
        }

        if (await store.AddCosignatureAsync(m.Size, LineageNames.Witness(m.Domain), m.Cosignature, context.CancellationToken))
        {
            logger.LogInformation("Checkpoint {Size} of {Origin} cosigned by {Witness}", m.Size, m.Origin, m.Domain);
        }
    }

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<CosignConflict> context)
    {
        var m = context.Message;
        if (m.Origin != Origin || m.Domain == Self)
        {
            return;
        }

        if (m.Fork)
        {
            logger.LogCritical("Witness {Witness} reports a fork of {Origin} at size {Size}: {Detail}", m.Domain, m.Origin, m.Size, m.Detail);
            return;
        }

        var latest = await Checkpoints().GetLatestCheckpointAsync(context.CancellationToken);
        if (latest is null || m.Size >= latest.Size)
        {
            // Nothing newer to offer (or the witness claims a size this log never reached: its own records show it).
            return;
        }

        if (attempts.Asked.TryGetValue((Origin, m.Domain), out var last) && last == (latest.Size, m.Size))
        {
            logger.LogWarning("Witness {Witness} refused checkpoint {Size} of {Origin} from size {OldSize} again: {Detail}", m.Domain, latest.Size, m.Origin, m.Size, m.Detail);
            return;
        }

        await AskAsync(context, m.Domain, latest.Note, latest.Size, m.Size);
    }

    private async Task AskAsync(ConsumeContext context, string witness, string note, long size, long oldSize)
    {
        var proof = oldSize == 0 ? [] : await log.GetConsistencyProofAsync(oldSize, size, context.CancellationToken);
        attempts.Asked[(Origin, witness)] = (size, oldSize);
        await context.Publish(
            new CosignRequest(Self, Origin, note, oldSize, [.. proof.Select(Convert.ToBase64String)]) { Witness = witness },
            context.CancellationToken);
    }

    /// <summary>The largest recent checkpoint size below <paramref name="below"/> that <paramref name="peer"/>'s witness cosigned (0 when none).</summary>
    private async Task<long> LastCosignedSizeAsync(string peer, long below, CancellationToken cancellationToken)
    {
        var store = Checkpoints();
        var prefix = "— " + LineageNames.Witness(peer) + " ";
        var all = await store.GetCheckpointsAsync(cancellationToken);
        foreach (var checkpoint in all.Where(c => c.Size <= below).OrderByDescending(c => c.Size).Take(SearchDepth))
        {
            var lines = await store.GetCosignaturesAsync(checkpoint.Size, cancellationToken);
            if (lines.Any(l => l.StartsWith(prefix, StringComparison.Ordinal)))
            {
                return checkpoint.Size;
            }
        }

        return 0;
    }

    private ICheckpointStore Checkpoints() =>
        log as ICheckpointStore ?? throw new InvalidOperationException("the lineage store keeps no checkpoints");
}

/// <summary>Per witness, the last (checkpoint size, old size) this replica asked for, so a refusal at the same size is final.</summary>
public sealed class CosignAttempts
{
    /// <summary>The last request per (origin, witness).</summary>
    public ConcurrentDictionary<(string Origin, string Witness), (long Size, long OldSize)> Asked { get; } = new();
}

/// <summary>The requester endpoint (competing consumers across replicas).</summary>
public sealed class CosignRequesterDefinition : ConsumerDefinition<CosignRequester>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public CosignRequesterDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "lineage-cosign");
        ConcurrentMessageLimit = 1;
    }
}
