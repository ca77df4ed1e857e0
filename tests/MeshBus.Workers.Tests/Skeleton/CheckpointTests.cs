using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Trust;
using MeshBus.Trust.Notes;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

public sealed class CheckpointTests
{
    [Fact(Timeout = 60_000)]
    public async Task The_lineage_worker_signs_a_checkpoint_with_the_log_key_once_enough_entries_were_appended()
    {
        await using var mesh = await SkeletonHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Lineage:CheckpointEveryEntries"] = "3",
            ["Lineage:CheckpointInterval"] = "01:00:00",
            ["Lineage:CheckpointCheckInterval"] = "00:00:01",
        });
        var store = (ICheckpointStore)mesh.Lineage;
        for (var i = 0; i < 3; i++)
        {
            var id = Guid.NewGuid();
            await mesh.Bus.Publish(new ExecutionStarted(id, SkeletonHarness.Domain, SkeletonHarness.Domain + "/agents/a", "g", mesh.Clock.GetUtcNow()));
            await mesh.LineageKeyAsync($"started:{id:D}");
        }

        var checkpoint = await SkeletonHarness.EventuallyAsync(
            async () =>
            {
                await mesh.AdvanceAsync(TimeSpan.FromSeconds(1));
                return await store.GetLatestCheckpointAsync();
            },
            c => c is not null,
            "a checkpoint");

        var head = await mesh.Lineage.GetTreeHeadAsync();
        Assert.True(checkpoint!.Size >= 3);
        var logKeys = DomainKeys.Load(mesh.Keys.DirectoryPath, KeyUsage.Log);
        var signer = new Ed25519NoteSigner(LineageNames.Origin(SkeletonHarness.Domain), logKeys.Signer(KeyUsage.Log, mesh.Clock.GetUtcNow()));
        var (opened, _) = Checkpoints.Open(checkpoint.Note, LineageNames.Origin(SkeletonHarness.Domain), [signer.VerifierKey]);
        Assert.Equal(checkpoint.Size, opened.Size);
        Assert.True(head.Size >= checkpoint.Size);
    }
}
