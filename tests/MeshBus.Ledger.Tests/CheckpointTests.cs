using System.Text;
using MeshBus.Ledger.Merkle;
using MeshBus.Trust.Notes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace MeshBus.Ledger.Tests;

public sealed class CheckpointTests : IDisposable
{
    private const string Origin = "acme.example/prod/lineage";
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(1_750_000_000));
    private readonly Ed25519NoteSigner _signer = new(Origin, Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());

    private SqlLineageLog Open(string name = "l.db") => LineageLogs.OpenSqlite(_dir.File(name), new LineageLogOptions { TimeProvider = _time });

    private static LineageEntry E(int i) => new($"ev:{i}", "GrantIssued", Encoding.UTF8.GetBytes($"event {i}"));

    [Fact]
    public async Task A_checkpoint_is_due_every_N_entries_or_T_seconds()
    {
        await using var log = Open();
        var publisher = new CheckpointPublisher(log, log, _signer, new CheckpointPolicy { EveryEntries = 10, EveryInterval = TimeSpan.FromSeconds(30) }, _time);
        Assert.Null(await publisher.PublishIfDueAsync());
        await log.AppendAsync(E(0));
        Assert.Equal(1, (await publisher.PublishIfDueAsync())!.Size);
        await log.AppendBatchAsync(Enumerable.Range(1, 5).Select(E).ToList());
        Assert.Null(await publisher.PublishIfDueAsync());
        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.Null(await publisher.PublishIfDueAsync());
        _time.Advance(TimeSpan.FromSeconds(1));
        var byTime = await publisher.PublishIfDueAsync();
        Assert.Equal(6, byTime!.Size);
        await log.AppendBatchAsync(Enumerable.Range(6, 10).Select(E).ToList());
        var byCount = await publisher.PublishIfDueAsync();
        Assert.Equal(16, byCount!.Size);
        Assert.Null(await publisher.PublishIfDueAsync());
        var (cp, _) = Checkpoints.Open(byCount.Note, Origin, [_signer.VerifierKey]);
        Assert.Equal((await log.GetTreeHeadAsync()).RootHash, cp.RootHash);
        Assert.Equal(TimeSpan.FromSeconds(30), await publisher.NextDueInAsync());
    }

    [Fact]
    public async Task The_audit_passes_on_an_intact_log_and_names_the_index_of_a_flipped_byte()
    {
        var path = _dir.File("audit.db");
        await using (var log = LineageLogs.OpenSqlite(path, new LineageLogOptions { TimeProvider = _time }))
        {
            var publisher = new CheckpointPublisher(log, log, _signer, new CheckpointPolicy { EveryEntries = 7 }, _time);
            for (var i = 0; i < 30; i++)
            {
                await log.AppendAsync(E(i));
                await publisher.PublishIfDueAsync();
            }

            var ok = await LineageAudit.RunAsync(log, Origin, [_signer.VerifierKey]);
            Assert.True(ok.Ok, string.Join("; ", ok.Findings.Select(f => f.Message)));
            Assert.Equal(30, ok.Entries);
            Assert.Equal(5, ok.Checkpoints); // sizes 1, 8, 15, 22, 29
        }

        await using (var conn = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            conn.Open();
            using var cmd = conn.CreateCommand();
            cmd.CommandText = "UPDATE lineage_entry SET data = $d WHERE idx = 12";
            var data = Encoding.UTF8.GetBytes("event 12");
            data[3] ^= 0x01;
            cmd.Parameters.AddWithValue("$d", data);
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }

        await using var reopened = LineageLogs.OpenSqlite(path);
        var report = await LineageAudit.RunAsync(reopened, Origin, [_signer.VerifierKey]);
        Assert.False(report.Ok);
        Assert.Contains(report.Findings, f => f.Index == 12 && f.Message.Contains("entry 12", StringComparison.Ordinal));
        Assert.Contains(report.Findings, f => f.Message.Contains("checkpoint at size 15", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_witness_cosigns_only_consistent_checkpoints_and_detects_a_fork()
    {
        await using var log = Open();
        await using var witnessDb = Open("witness.db");
        var witness = new CheckpointWitness(witnessDb, new CosignatureSigner("globex.example/witness", Enumerable.Range(60, 32).Select(i => (byte)i).ToArray(), _time));
        var publisher = new CheckpointPublisher(log, log, _signer, time: _time);
        await log.AppendBatchAsync(Enumerable.Range(0, 5).Select(E).ToList());
        var c5 = await publisher.PublishAsync();
        var first = await witness.CosignAsync(Origin, c5.Note, 0, [], [_signer.VerifierKey]);
        Assert.True(first.Cosigned, first.Detail);
        Assert.True(await log.AddCosignatureAsync(5, "globex.example/witness", first.CosignatureLine!));

        await log.AppendBatchAsync(Enumerable.Range(5, 6).Select(E).ToList());
        var c11 = await publisher.PublishAsync();
        var proof = await log.GetConsistencyProofAsync(5, 11);
        Assert.False((await witness.CosignAsync(Origin, c11.Note, 0, proof, [_signer.VerifierKey])).Cosigned);
        var bad = proof.Select(p => p.ToArray()).ToList();
        bad[0][0] ^= 1;
        var refused = await witness.CosignAsync(Origin, c11.Note, 5, bad, [_signer.VerifierKey]);
        Assert.False(refused.Cosigned);
        Assert.True(refused.Fork, "a validly signed checkpoint with no valid consistency proof from the cosigned one is a fork");
        Assert.Equal(5, refused.Size);
        Assert.True((await witness.CosignAsync(Origin, c11.Note, 5, proof, [_signer.VerifierKey])).Cosigned);

        // A validly signed checkpoint of size 11 with another root: a fork.
        var forked = SignedNote.Sign(new Checkpoint(Origin, 11, MerkleTree.LeafHash([1])).ToBody(), _signer);
        var fork = await witness.CosignAsync(Origin, forked, 11, [], [_signer.VerifierKey]);
        Assert.True(fork.Fork);
        Assert.False(fork.Cosigned);

        // Signed by another key: refused without touching the state.
        var stranger = new Ed25519NoteSigner(Origin, Enumerable.Range(90, 32).Select(i => (byte)i).ToArray());
        var foreign = await witness.CosignAsync(Origin, SignedNote.Sign(new Checkpoint(Origin, 12, new byte[32]).ToBody(), stranger), 11, [], [_signer.VerifierKey]);
        Assert.False(foreign.Cosigned);
        Assert.Equal(11, (await witnessDb.GetWitnessStateAsync(Origin))!.Size);
    }

    [Fact(Timeout = 60_000)]
    public async Task Two_witness_replicas_racing_on_diverging_heads_of_one_size_never_both_cosign()
    {
        for (var round = 0; round < 20; round++)
        {
            // Two replicas: two connections to the one witness store, each with its own CheckpointWitness.
            var name = $"witness-{round}.db";
            await using var first = Open(name);
            await using var second = Open(name);
            var cosigner = new CosignatureSigner("globex.example/witness", Enumerable.Range(60, 32).Select(i => (byte)i).ToArray(), _time);
            var a = SignedNote.Sign(new Checkpoint(Origin, 5, MerkleTree.LeafHash([1])).ToBody(), _signer);
            var b = SignedNote.Sign(new Checkpoint(Origin, 5, MerkleTree.LeafHash([2])).ToBody(), _signer);

            var outcomes = await Task.WhenAll(
                Task.Run(() => new CheckpointWitness(first, cosigner).CosignAsync(Origin, a, 0, [], [_signer.VerifierKey])),
                Task.Run(() => new CheckpointWitness(second, cosigner).CosignAsync(Origin, b, 0, [], [_signer.VerifierKey])));

            Assert.Equal(1, outcomes.Count(o => o.Cosigned));
            var state = await first.GetWitnessStateAsync(Origin);
            var winner = outcomes[0].Cosigned ? a : b;
            Assert.Equal(winner, state!.Note);
        }
    }

    public void Dispose() => _dir.Dispose();
}
