using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Ledger;
using MeshBus.Ledger.Evidence;
using MeshBus.Ledger.Merkle;
using MeshBus.Trust;
using MeshBus.Trust.Notes;
using MeshBus.Workers.Lineage.Witnessing;
using MeshBus.Workers.Tests.Skeleton;
using Xunit;

namespace MeshBus.Workers.Tests.Witnessing;

/// <summary>
/// Peers as witnesses (DESIGN.md §7): each domain's Lineage worker asks every pinned peer's witness to cosign its
/// checkpoints over the bridge, and stores a cosignature only after verifying it; a witness cosigns only what is
/// consistent with what it cosigned before, and treats two irreconcilable signed checkpoints as a fork.
/// </summary>
public sealed class WitnessingTests
{
    private const string Acme = "acme.example/prod";
    private const string Globex = "globex.example/prod";

    private static async Task<(WitnessDomain Acme, WitnessDomain Globex, InProcessFederationNetwork Network)> StartAsync()
    {
        var network = new InProcessFederationNetwork();
        var acme = WitnessDomain.Create(Acme);
        var globex = WitnessDomain.Create(Globex);
        acme.Pin(globex);
        globex.Pin(acme);
        await acme.StartAsync(network);
        await globex.StartAsync(network);
        return (acme, globex, network);
    }

    /// <summary>Waits until <paramref name="witness"/> has cosigned the whole of <paramref name="log"/>'s log; returns that size.</summary>
    private static Task<long> SettledAsync(WitnessDomain log, WitnessDomain witness) =>
        SkeletonHarness.EventuallyAsync(
            async () =>
            {
                var head = (await log.Lineage.GetTreeHeadAsync()).Size;
                var state = await ((IWitnessStateStore)witness.Lineage).GetWitnessStateAsync(LineageNames.Origin(log.Name));
                return state is not null && state.Size == head ? head : -1;
            },
            size => size > 0, $"{witness.Name}'s witness to have cosigned {log.Name}'s whole log", TimeSpan.FromSeconds(30));

    private static VerifierKey WitnessKeyOf(WitnessDomain d) =>
        VerifierKey.Create(LineageNames.Witness(d.Name), d.Keys.KeySet.Keys.First(k => k.Usage == KeyUsage.Witness).PublicKeyBytes(), VerifierKey.CosignatureType);

    private static VerifierKey LogKeyOf(WitnessDomain d) =>
        VerifierKey.Create(LineageNames.Origin(d.Name), d.Keys.KeySet.Keys.First(k => k.Usage == KeyUsage.Log).PublicKeyBytes());

    [Fact(Timeout = 90_000)]
    public async Task Each_domains_checkpoints_are_cosigned_by_the_other_domains_witness_over_the_bridge_and_the_cosignature_verifies()
    {
        var (acme, globex, _) = await StartAsync();
        await using var a = acme;
        await using var g = globex;

        await acme.AppendAsync(3);
        await globex.AppendAsync(2);
        var (first, line) = await acme.CosignedAsync(globex, 3);
        await globex.CosignedAsync(acme, 2);

        // Then from the cosigned size on: the witness checks a consistency proof, not a fresh start.
        await acme.AppendAsync(4);
        var (second, _) = await acme.CosignedAsync(globex, first.Size + 4);
        Assert.True(second.Size > first.Size);
        Assert.Contains(acme.Seen.OfType<CosignRequest>(), r => r.OldSize > 0 && r.ConsistencyProof.Count > 0 && r.Witness == Globex);

        var opened = SignedNote.Open(SignedNote.AddSignatures(first.Note, [line]), [LogKeyOf(acme), WitnessKeyOf(globex)]);
        Assert.Equal(2, opened.Verified.Count);
        var state = await ((IWitnessStateStore)globex.Lineage).GetWitnessStateAsync(LineageNames.Origin(Acme));
        Assert.True(state!.Size >= second.Size);

        // meshbus status shows who cosigned the last checkpoint (once the log has stopped growing: a recorded conflict grows it).
        await SkeletonHarness.EventuallyAsync(
            async () => (await acme.Checkpoints.GetLatestCheckpointAsync()) is { } latest && (await acme.Checkpoints.GetCosignaturesAsync(latest.Size)).Count > 0
                && latest.Size == (await acme.Lineage.GetTreeHeadAsync()).Size,
            done => done, "the last checkpoint to be cosigned", TimeSpan.FromSeconds(30));
        await acme.StopAsync();
        var status = await MeshBus.Cli.Commands.Status.DomainStatusReader.ReadAsync(null, acme.Directory, Acme, acme.KeyDirectory, CancellationToken.None);
        Assert.Equal([LineageNames.Witness(Globex)], status.Lineage.LastCheckpoint!.CosignedBy);
    }

    [Fact(Timeout = 90_000)]
    public async Task A_restarted_witness_keeps_its_state_and_goes_on_cosigning_from_it()
    {
        var (acme, globex, network) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        await acme.AppendAsync(3);
        var (before, _) = await acme.CosignedAsync(globex, 3);

        await globex.StopAsync();
        await globex.StartAsync(network);
        var kept = await ((IWitnessStateStore)globex.Lineage).GetWitnessStateAsync(LineageNames.Origin(Acme));
        Assert.Equal(before.Size, kept!.Size);

        await acme.AppendAsync(2);
        var (after, _) = await acme.CosignedAsync(globex, before.Size + 2);
        Assert.True(after.Size > before.Size);
    }

    [Fact(Timeout = 90_000)]
    public async Task A_rewritten_log_signed_by_the_real_log_key_is_a_fork_the_witness_refuses_keeps_as_evidence_and_lapses_trust_for()
    {
        var (acme, globex, _) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        await acme.AppendAsync(4);
        await acme.CosignedAsync(globex, 4);
        var size = await SettledAsync(acme, globex);
        var cosigned = (await acme.Checkpoints.GetCheckpointAsync(size))!;

        // Acme rewrites history: another tree of the same size, signed by its real log key.
        var logKey = DomainKeys.Load(acme.KeyDirectory, KeyUsage.Log).Signer(KeyUsage.Log, DateTimeOffset.UtcNow);
        var rewritten = SignedNote.Sign(new Checkpoint(LineageNames.Origin(Acme), cosigned.Size, MerkleTree.LeafHash([9, 9, 9])).ToBody(), new Ed25519NoteSigner(LineageNames.Origin(Acme), logKey));
        var state = await ((IWitnessStateStore)globex.Lineage).GetWitnessStateAsync(LineageNames.Origin(Acme));
        await acme.Bus.Publish(new CosignRequest(Acme, LineageNames.Origin(Acme), rewritten, state!.Size, []) { Witness = Globex });

        var lapse = await SkeletonHarness.EventuallyAsync(
            () => Task.FromResult(globex.Seen.OfType<TrustLapsed>().FirstOrDefault()), l => l is not null, "globex to lapse trust in acme", TimeSpan.FromSeconds(30));
        Assert.Equal(GovernanceReason.LogInconsistent, lapse!.Reason);
        Assert.Equal(GovernanceScope.Peer, lapse.Scope);
        Assert.Equal(Acme, lapse.Subject);
        var halt = await SkeletonHarness.EventuallyAsync(
            () => Task.FromResult(globex.Seen.OfType<HaltExecution>().FirstOrDefault(h => h.Domain == Globex)), h => h is not null, "globex to halt its work involving acme", TimeSpan.FromSeconds(30));
        Assert.Equal((GovernanceScope.Peer, Acme, GovernanceReason.LogInconsistent), (halt!.Scope, halt.Subject, halt.Reason));
        var conflict = await SkeletonHarness.EventuallyAsync(
            () => Task.FromResult(acme.Seen.OfType<CosignConflict>().FirstOrDefault(c => c.Fork)), c => c is not null, "the fork to reach acme", TimeSpan.FromSeconds(30));
        Assert.Equal(Globex, conflict!.Domain);
        var evidence = await globex.Lineage.GetByKeyAsync(ForkEvidence.KeyOf(LineageNames.Origin(Acme), rewritten));
        Assert.NotNull(evidence);
        var text = System.Text.Encoding.UTF8.GetString(evidence!.Data);
        Assert.Contains(cosigned.Note.Split('\n')[2], text, StringComparison.Ordinal);
        Assert.Contains(rewritten.Split('\n')[2], text, StringComparison.Ordinal);
        // The forked note never became the witness's state: it holds a checkpoint of acme's genuine log (which may have
        // moved on since, consistently: acme records the conflict it was told of).
        var after = await ((IWitnessStateStore)globex.Lineage).GetWitnessStateAsync(LineageNames.Origin(Acme));
        Assert.NotEqual(rewritten, after!.Note);
        Assert.Equal((await acme.Checkpoints.GetCheckpointAsync(after.Size))!.Note, after.Note);
    }

    [Fact(Timeout = 90_000)]
    public async Task A_rewritten_log_cannot_produce_evidence_that_passes_with_a_cosignature_while_the_genuine_bundle_does()
    {
        var (acme, globex, _) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        var intent = Guid.NewGuid().ToString("D");
        await acme.Lineage.AppendAsync(new LineageEntry($"intent:{intent}", "TestEvent", System.Text.Encoding.UTF8.GetBytes("{\"type\":\"TestEvent\"}")));
        await acme.AppendAsync(2);
        var (cosigned, _) = await acme.CosignedAsync(globex, 3);
        var logKey = DomainKeys.Load(acme.KeyDirectory, KeyUsage.Log).Signer(KeyUsage.Log, DateTimeOffset.UtcNow);
        var signer = new Ed25519NoteSigner(LineageNames.Origin(Acme), logKey);
        var witness = VerifierKey.Create(LineageNames.Witness(Globex), globex.Keys.KeySet.Keys.First(k => k.Usage == KeyUsage.Witness).PublicKeyBytes(), VerifierKey.CosignatureType);
        var pinned = new TrustConfig([DomainKeys.Load(acme.KeyDirectory).Root, DomainKeys.Load(globex.KeyDirectory).Root]);
        Assert.True(pinned.AcceptKeySet(acme.Keys.SignedKeySet, null).IsValid);
        Assert.True(pinned.AcceptKeySet(globex.Keys.SignedKeySet, null).IsValid);
        var sql = (SqlLineageLog)acme.Lineage;
        var genuine = await EvidenceExporter.ExportAsync(sql, new CheckpointPublisher(sql, sql, signer), signer.VerifierKey, intent, [witness], null, at: cosigned);
        Assert.True(EvidenceVerifier.Verify(genuine, pinned, 1).Ok);

        // The same domain rewrites its history: another tree of the same size, its checkpoint signed by the real log key.
        var rewrittenPath = Path.Combine(acme.Directory, "rewritten.db");
        await using var rewritten = LineageLogs.OpenSqlite(rewrittenPath);
        await rewritten.AppendAsync(new LineageEntry($"intent:{intent}", "TestEvent", System.Text.Encoding.UTF8.GetBytes("{\"type\":\"TestEvent\",\"rewritten\":true}")));
        // (of the size the witness cosigned last, once acme's log stopped growing: a smaller checkpoint is merely late, not a fork)
        var witnessAt = await SettledAsync(acme, globex);
        for (var i = 1; i < witnessAt; i++)
        {
            await rewritten.AppendAsync(new LineageEntry($"test:{i}", "TestEvent", [(byte)i]));
        }

        var forged = await new CheckpointPublisher(rewritten, rewritten, signer).PublishAsync();
        Assert.Equal(witnessAt, forged.Size);
        await acme.Bus.Publish(new CosignRequest(Acme, LineageNames.Origin(Acme), forged.Note, witnessAt, []) { Witness = Globex });

        // The witness refuses it as a fork, so no cosignature exists for it: its evidence fails the cosignature check.
        await SkeletonHarness.EventuallyAsync(() => Task.FromResult(acme.Seen.OfType<CosignConflict>().Any(c => c.Fork)), f => f, "the fork refusal", TimeSpan.FromSeconds(30));
        var fake = await EvidenceExporter.ExportAsync(rewritten, new CheckpointPublisher(rewritten, rewritten, signer), signer.VerifierKey, intent, [witness], null, at: forged);
        Assert.True(EvidenceVerifier.Verify(fake, pinned, 0).Ok, "without a cosignature requirement the rewritten log's own proofs hold");
        var strict = EvidenceVerifier.Verify(fake, pinned, 1);
        Assert.False(strict.Ok);
        Assert.Contains(strict.Checks, c => !c.Passed && c.Description.Contains("cosigned by 0", StringComparison.Ordinal));
    }

    [Fact(Timeout = 90_000)]
    public async Task A_witness_ahead_of_what_the_log_asked_answers_a_conflict_and_the_log_retries_from_its_size()
    {
        var (acme, globex, _) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        await acme.AppendAsync(3);
        var (cosigned, _) = await acme.CosignedAsync(globex, 3);
        var witnessAt = (await ((IWitnessStateStore)globex.Lineage).GetWitnessStateAsync(LineageNames.Origin(Acme)))!.Size;

        // The log loses its record of earlier cosignatures: its next request starts from 0, the witness is further on.
        await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(acme.Directory, "lineage.db")};Pooling=false"))
        {
            await db.OpenAsync();
            await using var delete = db.CreateCommand();
            delete.CommandText = "DELETE FROM lineage_cosignature";
            await delete.ExecuteNonQueryAsync();
        }

        await acme.AppendAsync(2);
        var (after, _) = await acme.CosignedAsync(globex, witnessAt + 2);

        Assert.True(after.Size > cosigned.Size);
        Assert.Contains(acme.Seen.OfType<CosignConflict>(), c => !c.Fork && c.Domain == Globex && c.Size >= witnessAt);
        Assert.Contains(acme.Seen.OfType<CosignRequest>(), r => r.OldSize >= witnessAt && r.ConsistencyProof.Count > 0);
        Assert.DoesNotContain(globex.Seen, m => m is TrustLapsed);
    }

    [Fact(Timeout = 90_000)]
    public async Task A_cosignature_not_made_by_the_peers_witness_key_is_not_stored()
    {
        var (acme, globex, _) = await StartAsync();
        await using var a = acme;
        await using var g = globex;
        await acme.AppendAsync(2);
        var (cosigned, line) = await acme.CosignedAsync(globex, 2);
        await acme.AppendAsync(1);
        var next = await SkeletonHarness.EventuallyAsync(
            () => acme.Checkpoints.GetLatestCheckpointAsync(), c => c is not null && c.Size > cosigned.Size, "a newer checkpoint", TimeSpan.FromSeconds(30));

        // Globex's genuine line for another size, and a line by a stranger's key under globex's witness name.
        var stranger = new CosignatureSigner(LineageNames.Witness(Globex), Enumerable.Range(7, 32).Select(i => (byte)i).ToArray());
        var strangerLine = stranger.CosignLine(Checkpoint.Parse(SignedNote.Parse(next!.Note).Body).ToBody());
        await acme.Bus.Publish(new CheckpointCosigned(Globex, LineageNames.Origin(Acme), next.Size, line, DateTimeOffset.UtcNow));
        await acme.Bus.Publish(new CheckpointCosigned(Globex, LineageNames.Origin(Acme), next.Size, strangerLine, DateTimeOffset.UtcNow));

        // The genuine cosignature of this size comes through the bridge; neither forgery is stored beside it.
        var (c, genuine) = await acme.CosignedAsync(globex, next.Size);
        var lines = await acme.Checkpoints.GetCosignaturesAsync(next.Size);
        Assert.DoesNotContain(strangerLine, lines);
        Assert.DoesNotContain(line, lines);
        Assert.Contains(genuine, lines);
        Assert.Equal(next.Size, c.Size);
    }
}
