using MeshBus.Persistence;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>How an Authorize replica tells Sync what it loaded (Sync acknowledges an epoch only when every live replica has it).</summary>
public sealed class ReplicaLoadReportTests
{
    [Fact(Timeout = 60_000)]
    public async Task Each_authorize_replica_reports_the_policy_epoch_it_loaded_on_start_and_again_on_its_interval()
    {
        await using var first = await AuthorizeHarness.StartAsync(settings: new Dictionary<string, string?> { ["Authorize:ReplicaReportSeconds"] = "2" });
        var replicas = first.Services.GetRequiredService<IReplicaLoadStore>();
        var since = first.Time.GetUtcNow() - TimeSpan.FromSeconds(10);

        var started = await Skeleton.SkeletonHarness.EventuallyAsync(async () => (await replicas.LiveAsync(since, default)).SingleOrDefault(), r => r is not null, "the start report");
        Assert.Equal(first.Policy.LoadedEpoch, started!.DomainPolicyEpoch);

        first.Policy.LoadedEpoch = 8;
        first.Time.Advance(TimeSpan.FromSeconds(2));

        await Skeleton.SkeletonHarness.EventuallyAsync(async () => (await replicas.LiveAsync(since, default)).Single(), r => r.DomainPolicyEpoch == 8, "the interval's report");
    }
}
