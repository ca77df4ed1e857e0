using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Ledger.Evidence;
using MeshBus.Trust;
using MeshBus.Trust.Notes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Lineage.Witnessing;

/// <summary>
/// Cross-domain evidence (DESIGN.md §7): answers a peer's <see cref="ProofRequest"/> with this domain's evidence bundle
/// of the intent, proven against a checkpoint the requester's own witness has cosigned (it waits, bounded by
/// <see cref="LineageOptions.ProofCosignWait"/>, for that cosignature; without it the bundle still goes, and
/// <c>proof verify --min-cosignatures</c> says so). The bundle carries no grant: re-issuing it would need the grant
/// key, which only Authorize holds; the requester's export shows the grant from the domain that issued it.
/// </summary>
public sealed class ProofResponder(
    ILineageLog log,
    WitnessKeys keys,
    IBus bus,
    IOptions<MeshBusOptions> mesh,
    IOptions<LineageOptions> options,
    TimeProvider clock,
    ILogger<ProofResponder> logger) : IConsumer<ProofRequest>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<ProofRequest> context)
    {
        var m = context.Message;
        var self = mesh.Value.Domain;
        if (m.Domain != self || m.Requester is null || m.Requester == self)
        {
            return; // this domain's own request on its way out, or not addressed here
        }

        var answer = new ProofResponse(m.RequestId, self, m.IntentId, null, null) { Requester = m.Requester };
        if (log is not SqlLineageLog sql || keys.LogKey is null)
        {
            await context.Publish(answer with { Error = "this domain's lineage store cannot export evidence" }, context.CancellationToken);
            return;
        }

        var intent = m.IntentId.ToString("D");
        var records = await log.FindAsync(intent, context.CancellationToken);
        if (!records.Any(r => r.Type != PeerEvidence.Type))
        {
            await context.Publish(answer with { Error = $"{self} has no records of intent {intent}" }, context.CancellationToken);
            return;
        }

        var signer = new Ed25519NoteSigner(LineageNames.Origin(self), keys.LogKey());
        var publisher = new CheckpointPublisher(sql, sql, signer, time: clock);
        var checkpoint = await sql.GetLatestCheckpointAsync(context.CancellationToken);
        if (checkpoint is null || checkpoint.Size <= records.Max(r => r.Index))
        {
            checkpoint = await publisher.PublishAsync(context.CancellationToken);
            // As the checkpointer does: peers' witnesses are asked to cosign it.
            await bus.Publish(new CheckpointPublished(self, publisher.Origin, checkpoint.Size, Convert.ToBase64String(checkpoint.RootHash), checkpoint.Note, checkpoint.CreatedAt), context.CancellationToken);
        }

        // The requester's witness may never cosign this checkpoint: if it cosigned a newer one first, this one is late
        // for it (a CosignConflict, not a fork). Any covering checkpoint it cosigned proves the records as well, so the
        // newest one is taken as soon as it is.
        var witnessName = "— " + LineageNames.Witness(m.Requester) + " ";
        var deadline = clock.GetUtcNow() + options.Value.ProofCosignWait;
        async Task<bool> CosignedAsync(StoredCheckpoint c) =>
            (await sql.GetCosignaturesAsync(c.Size, context.CancellationToken)).Any(l => l.StartsWith(witnessName, StringComparison.Ordinal));
        while (!await CosignedAsync(checkpoint) && clock.GetUtcNow() < deadline)
        {
            if (await sql.GetLatestCheckpointAsync(context.CancellationToken) is { } latest && latest.Size > checkpoint.Size && await CosignedAsync(latest))
            {
                checkpoint = latest;
                break;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), clock, context.CancellationToken);
        }

        var witnesses = keys.Peers.SelectMany(keys.WitnessKeysOf);
        var bundle = await EvidenceExporter.ExportAsync(sql, publisher, signer.VerifierKey, intent, witnesses,
            Jwks.FromKeySet(keys.Trust.OwnKeySet!, clock.GetUtcNow()), cancellationToken: context.CancellationToken, at: checkpoint);
        logger.LogInformation("Evidence of intent {IntentId} sent to {Requester} ({Records} records, checkpoint {Size})", intent, m.Requester, bundle.Records.Count, checkpoint.Size);
        await context.Publish(answer with { Evidence = (bundle with { Peers = [] }).ToJson() }, context.CancellationToken);
    }
}

/// <summary>
/// Records a peer's evidence bundle that answers this domain's <see cref="ProofRequest"/> in this domain's own log
/// (<see cref="PeerEvidence"/>), after verifying it against this domain's pinned roots: every key chains to a pinned
/// root, every record is included in a checkpoint signed by the peer's log key, and it is the peer's own log and intent.
/// A bundle that fails goes to the error queue with the first failed check; <c>meshbus proof export</c> nests the
/// recorded bundles as peer parts.
/// </summary>
public sealed class PeerEvidenceRecorder(ILineageLog log, WitnessKeys keys, IOptions<MeshBusOptions> mesh, ILogger<PeerEvidenceRecorder> logger) : IConsumer<ProofResponse>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<ProofResponse> context)
    {
        var m = context.Message;
        var self = mesh.Value.Domain;
        if (m.Requester != self || m.Domain == self)
        {
            return;
        }

        if (m.Evidence is null)
        {
            logger.LogWarning("{Peer} has no evidence of intent {IntentId}: {Error}", m.Domain, m.IntentId, m.Error);
            return;
        }

        EvidenceBundle bundle;
        try
        {
            bundle = EvidenceBundle.Parse(m.Evidence);
        }
        catch (FormatException e)
        {
            throw new MalformedMessageException(typeof(ProofResponse), [$"the evidence of {m.Domain} is not a bundle: {e.Message}"]);
        }

        var intent = m.IntentId.ToString("D");
        var report = EvidenceVerifier.Verify(bundle, keys.Trust);
        var problems = report.Checks.Where(c => !c.Passed).Select(c => c.Description).ToList();
        if (report.UntrustedRoots)
        {
            problems.Add("a key does not chain to a pinned root");
        }

        if (bundle.IntentId != intent || bundle.Peers.Count > 0 || bundle.Logs.Keys.SingleOrDefault() != LineageNames.Origin(m.Domain))
        {
            problems.Add($"it must be {m.Domain}'s own bundle of intent {intent}, without peer parts");
        }

        if (problems.Count > 0 || !report.Ok)
        {
            throw new MalformedMessageException(typeof(ProofResponse), [$"the evidence of intent {intent} from {m.Domain} is refused: {string.Join("; ", problems.DefaultIfEmpty("it has no checks"))}"]);
        }

        var existing = (await log.FindAsync(intent, context.CancellationToken)).Count(r => r.Type == PeerEvidence.Type);
        await log.AppendAsync(new LineageEntry(PeerEvidence.Key(intent, m.Domain, existing), PeerEvidence.Type, PeerEvidence.Leaf(m.Domain, intent, m.Evidence)), context.CancellationToken);
        logger.LogInformation("Evidence of intent {IntentId} from {Peer} recorded ({Records} records)", intent, m.Domain, bundle.Records.Count);
    }
}

/// <summary>The proof endpoint (competing consumers across replicas).</summary>
public sealed class ProofResponderDefinition : ConsumerDefinition<ProofResponder>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public ProofResponderDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "lineage-proofs");
        ConcurrentMessageLimit = 4;
    }
}

/// <summary>The endpoint that records peers' evidence (competing consumers across replicas).</summary>
public sealed class PeerEvidenceRecorderDefinition : ConsumerDefinition<PeerEvidenceRecorder>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public PeerEvidenceRecorderDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "lineage-peer-evidence");
        ConcurrentMessageLimit = 1;
    }
}
