using MeshBus.Policy.Bundles;
using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class ResourcePatternTests
{
    [Theory]
    [InlineData("k8s://prod/web", "k8s://prod/web", true)]
    [InlineData("k8s://prod/web", "k8s://prod/web2", false)]
    [InlineData("k8s://prod/web", "K8S://prod/web", false)]
    [InlineData("k8s://prod/*", "k8s://prod/web", true)]
    [InlineData("k8s://prod/*", "k8s://prod/", true)]
    [InlineData("k8s://prod/*", "k8s://prod/web/pods", false)]
    [InlineData("k8s://prod/*", "k8s://prod", false)]
    [InlineData("k8s://prod/**", "k8s://prod/web/pods/x", true)]
    [InlineData("k8s://prod/**", "k8s://staging/web", false)]
    [InlineData("k8s://*/web", "k8s://prod/web", true)]
    [InlineData("k8s://*/web", "k8s://prod/eu/web", false)]
    [InlineData("k8s://**/web", "k8s://prod/eu/web", true)]
    [InlineData("k8s://**/web", "k8s://prod/eu/web/x", false)]
    [InlineData("s3://bucket/*.csv", "s3://bucket/a.csv", true)]
    [InlineData("s3://bucket/*.csv", "s3://bucket/a/b.csv", false)]
    [InlineData("s3://bucket/*-*-*.csv", "s3://bucket/a-b-c-d.csv", true)]
    [InlineData("s3://bucket/*-*-*.csv", "s3://bucket/a-b.csv", false)]
    [InlineData("**", "anything/at/all", true)]
    [InlineData("*", "", true)]
    [InlineData("*", "a/b", false)]
    public void Globs_match_whole_resources(string pattern, string resource, bool expected)
    {
        var p = ResourcePattern.TryParse(pattern, out var error);
        Assert.Null(error);
        Assert.Equal(expected, p!.IsMatch(resource));
    }

    [Theory]
    [InlineData("")]
    [InlineData("k8s://prod/***")]
    [InlineData("k8s://prod/ web")]
    [InlineData("k8s://prod/\n")]
    public void Malformed_patterns_are_refused_with_a_reason(string pattern)
    {
        Assert.Null(ResourcePattern.TryParse(pattern, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void A_pathological_pattern_matches_in_linear_time()
    {
        var p = ResourcePattern.TryParse(string.Concat(Enumerable.Repeat("*a", 40)) + "b", out _)!;
        var resource = new string('a', 5000);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(p.IsMatch(resource));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), "matching must not backtrack exponentially");
    }
}
