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
    public void A_signed_acknowledgement_a_key_set_and_a_federation_bundle_published_again_are_the_same_event()
    {
        // The signature covers the time, so a re-signed acknowledgement differs in both (seen after every Sync restart).
        var synced = new PolicySynced("acme.example/prod", "acme.example/prod", PolicyScope.Domain, 3, "sha256:aa", T) { Signature = "h..s1" };
        var resigned = synced with { SyncedAt = T.AddSeconds(5), Signature = "h..s2" };
        Assert.True(LineageKeys.IsRepublication(nameof(PolicySynced), LineageKeys.Leaf(synced), LineageKeys.Leaf(resigned)));

        var keySet = new KeySetPublished("acme.example/prod", 2, "{\"sequence\":2}", T);
        Assert.True(LineageKeys.IsRepublication(nameof(KeySetPublished), LineageKeys.Leaf(keySet), LineageKeys.Leaf(keySet with { PublishedAt = T.AddMinutes(3) })));
        Assert.False(LineageKeys.IsRepublication(nameof(KeySetPublished), LineageKeys.Leaf(keySet), LineageKeys.Leaf(keySet with { KeySet = "{\"sequence\":2,\"other\":1}" })));

        var federation = new PolicyPublished("acme-globex", PolicyScope.Federation, 3, "sha256:aa", "{}", T) { Publisher = "acme.example/prod" };
        var fromPeer = federation with { PublishedAt = T.AddSeconds(1), Publisher = "globex.example/prod" };
        Assert.True(LineageKeys.IsRepublication(nameof(PolicyPublished), LineageKeys.Leaf(federation), LineageKeys.Leaf(fromPeer)));
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
