using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust;
using MeshBus.Trust.Notes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Lineage.Witnessing;

/// <summary>
/// This domain's witness of its peers' logs (DESIGN.md §7): answers a peer's <see cref="CosignRequest"/> with
/// <see cref="CheckpointCosigned"/> only after verifying the checkpoint's signature by the peer's log key and a
/// consistency proof from the last checkpoint it cosigned for that log (<see cref="CheckpointWitness"/>: state moved by
/// compare-and-swap, so two replicas never cosign diverging heads), else <see cref="CosignConflict"/> naming the size it
/// is at. Two validly signed checkpoints that cannot be consistent (same size, other root; or no valid consistency
/// proof from the cosigned one) are a fork: the witness refuses, appends both notes to this domain's lineage as
/// evidence, and the peer's trust lapses (<see cref="TrustLapsed"/>, <see cref="GovernanceReason.LogInconsistent"/>) with
/// one <see cref="HaltExecution"/> scoped to the peer, as the sync watchdog orders on a stall.
/// A smaller or late checkpoint is not a fork.
/// </summary>
public sealed class CheckpointWitnessConsumer(
    ILineageLog log,
    WitnessKeys keys,
    IOptions<MeshBusOptions> mesh,
    TimeProvider clock,
    ILogger<CheckpointWitnessConsumer> logger) : IConsumer<CosignRequest>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<CosignRequest> context)
    {
        var m = context.Message;
        var self = mesh.Value.Domain;
        if (m.Domain == self || (m.Witness is not null && m.Witness != self))
        {
            return; // this domain's own request on its way out, or one addressed to another witness
        }

        if (m.Origin != LineageNames.Origin(m.Domain))
        {
            throw new MalformedMessageException(typeof(CosignRequest), [$"origin '{m.Origin}' is not the lineage log of {m.Domain} ('{LineageNames.Origin(m.Domain)}')"]);
        }

        var logKeys = keys.LogKeysOf(m.Domain);
        if (logKeys.Count == 0)
        {
            throw new MalformedMessageException(typeof(CosignRequest), [$"no log key of {m.Domain} is known here (not pinned, or no accepted key set)"]);
        }

        var proof = new List<byte[]>(m.ConsistencyProof.Count);
        foreach (var hash in m.ConsistencyProof)
        {
            if (!TryBase64(hash, out var bytes))
            {
                throw new MalformedMessageException(typeof(CosignRequest), ["a consistency proof hash is not base64"]);
            }

            proof.Add(bytes);
        }

        if (log is not IWitnessStateStore state)
        {
            throw new InvalidOperationException("the lineage store keeps no witness state");
        }

        var before = await state.GetWitnessStateAsync(m.Origin, context.CancellationToken);
        var witness = new CheckpointWitness(state, new CosignatureSigner(LineageNames.Witness(self), keys.WitnessSigner(), clock));
        var outcome = await witness.CosignAsync(m.Origin, m.Checkpoint, m.OldSize, proof, logKeys, context.CancellationToken);
        var now = clock.GetUtcNow();
        if (outcome.Cosigned)
        {
            await context.Publish(new CheckpointCosigned(self, m.Origin, outcome.Size, outcome.CosignatureLine!, now), context.CancellationToken);
            return;
        }

        if (outcome.Fork && before is not null)
        {
            // Keep both signed notes: the one this witness cosigned and the one that contradicts it.
            var evidence = new ForkEvidence(m.Domain, m.Origin, before.Size, before.Note, m.Checkpoint, outcome.Detail!, now);
            await log.AppendAsync(new LineageEntry(ForkEvidence.Key(evidence), nameof(ForkEvidence), Canonical.Json(evidence)), context.CancellationToken);
            logger.LogCritical("Fork of {Origin}: {Detail}; trust in {Peer} lapsed (LogInconsistent), both notes kept in lineage", m.Origin, outcome.Detail, m.Domain);
            await context.Publish(new TrustLapsed(self, GovernanceScope.Peer, m.Domain, GovernanceReason.LogInconsistent, $"{m.Origin}: {outcome.Detail}", now), context.CancellationToken);
            // As the sync watchdog does on a lapse: one halt scoped to the peer, which Enforce fans out to the work involving it.
            await context.Publish(new HaltExecution(ForkHaltId(m.Origin, m.Checkpoint), self, GovernanceScope.Peer, m.Domain, GovernanceReason.LogInconsistent,
                $"{m.Domain}'s log forked: {outcome.Detail}", now), context.CancellationToken);
        }
        else
        {
            logger.LogInformation("Cosign request of {Origin} at {Size} refused: {Detail}", m.Origin, SizeOf(m.Checkpoint), outcome.Detail);
        }

        await context.Publish(new CosignConflict(self, m.Origin, outcome.Size, outcome.Detail ?? "refused") { Fork = outcome.Fork }, context.CancellationToken);
    }

    /// <summary>The same fork (a redelivered request) orders the same halt.</summary>
    private static Guid ForkHaltId(string origin, string conflictingNote) =>
        new(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"meshbus-fork-halt/v1\n{origin}\n{conflictingNote}")).AsSpan(0, 16));

    private static bool TryBase64(string text, out byte[] bytes)
    {
        bytes = new byte[(text.Length * 3 / 4) + 3];
        if (Convert.TryFromBase64String(text, bytes, out var written))
        {
            bytes = bytes[..written];
            return true;
        }

        return false;
    }

    private static string SizeOf(string note) => note.Split('\n') is { Length: > 1 } lines ? lines[1] : "?";
}

/// <summary>
/// What a witness keeps when it meets a fork: the checkpoint it had cosigned and the validly signed one that cannot be
/// consistent with it, both as received (lineage type <c>ForkEvidence</c>, key <c>fork:&lt;origin&gt;:&lt;size&gt;</c>).
/// </summary>
/// <param name="Domain">The log's domain.</param>
/// <param name="Origin">The log's origin.</param>
/// <param name="CosignedSize">The size this witness had cosigned.</param>
/// <param name="CosignedNote">The checkpoint it had cosigned.</param>
/// <param name="ConflictingNote">The checkpoint that contradicts it.</param>
/// <param name="Detail">Why they cannot both hold.</param>
/// <param name="DetectedAt">When.</param>
public sealed record ForkEvidence(string Domain, string Origin, long CosignedSize, string CosignedNote, string ConflictingNote, string Detail, DateTimeOffset DetectedAt)
{
    /// <summary>The lineage key: one record per conflicting checkpoint.</summary>
    public static string Key(ForkEvidence e) => KeyOf(e.Origin, e.ConflictingNote);

    /// <summary>The lineage key of the evidence of <paramref name="conflictingNote"/> against <paramref name="origin"/>'s cosigned checkpoint.</summary>
    public static string KeyOf(string origin, string conflictingNote) =>
        $"fork:{origin}:{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(conflictingNote)))[..16]}";
}

/// <summary>The witness endpoint (competing consumers across replicas; the state's compare-and-swap orders them).</summary>
public sealed class CheckpointWitnessConsumerDefinition : ConsumerDefinition<CheckpointWitnessConsumer>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public CheckpointWitnessConsumerDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "lineage-witness");
        ConcurrentMessageLimit = 1;
    }
}
