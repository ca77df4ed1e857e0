using MeshBus.Contracts;
using MeshBus.Workers.Lineage;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>Sync re-publishes its applied policy every interval; the recorder must tell that from a real conflict.</summary>
public sealed class LineageRepublicationTests
{
    private static readonly DateTimeOffset T = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    [Fact]
    public void A_policy_published_again_later_is_the_same_event()
    {
        var first = new PolicyPublished("acme.example/prod", PolicyScope.Domain, 3, "sha256:aa", "{}", T);
        var again = first with { PublishedAt = T.AddSeconds(5) };
        Assert.True(LineageKeys.IsRepublication(nameof(PolicyPublished), LineageKeys.Leaf(first), LineageKeys.Leaf(again)));

        var synced = new PolicySynced("acme.example/prod", "acme.example/prod", PolicyScope.Domain, 3, "sha256:aa", T);
        Assert.True(LineageKeys.IsRepublication(nameof(PolicySynced), LineageKeys.Leaf(synced), LineageKeys.Leaf(synced with { SyncedAt = T.AddSeconds(5) })));
    }

    [Fact]
    public void A_policy_of_the_same_epoch_with_another_digest_is_a_conflict()
    {
        var first = new PolicyPublished("acme.example/prod", PolicyScope.Domain, 3, "sha256:aa", "{}", T);
        var other = first with { Digest = "sha256:bb", PublishedAt = T.AddSeconds(5) };
        Assert.False(LineageKeys.IsRepublication(nameof(PolicyPublished), LineageKeys.Leaf(first), LineageKeys.Leaf(other)));

        var halt = new HaltExecution(Guid.NewGuid(), "acme.example/prod", GovernanceScope.Execution, "x", GovernanceReason.OperatorHalt, "stop", T);
        Assert.False(LineageKeys.IsRepublication(nameof(HaltExecution), LineageKeys.Leaf(halt), LineageKeys.Leaf(halt with { Detail = "other" })));
    }
}
