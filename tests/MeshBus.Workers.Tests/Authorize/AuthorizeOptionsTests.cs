using MeshBus.Hosting;
using MeshBus.Workers.Authorize;
using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

public sealed class AuthorizeOptionsTests
{
    private static OptionsValidationException Failure(params string[] args)
    {
        using var host = MeshBusHost.CreateBuilder(["--MeshBus:Domain=acme.example/prod", .. args], new AuthorizeWorker()).Build();
        return Assert.Throws<OptionsValidationException>(() => MeshBusHost.ValidateOptions(host.Services));
    }

    [Fact]
    public void More_sync_redeliveries_than_the_hosting_redelivers_is_refused_at_start()
    {
        // Three redelivery delays by default: a fourth sync wait would send the intent to the error queue unanswered.
        var e = Failure("--Authorize:SyncMaxRedeliveries=4");
        Assert.Contains(e.Failures, f => f.Contains("Authorize__SyncMaxRedeliveries", StringComparison.Ordinal));
    }

    [Fact]
    public void Sync_redeliveries_within_the_configured_redelivery_delays_validate()
    {
        using var host = MeshBusHost.CreateBuilder(
            ["--MeshBus:Domain=acme.example/prod", "--MeshBus:RedeliverySeconds:0=1", "--MeshBus:RedeliverySeconds:1=2", "--Authorize:SyncMaxRedeliveries=2"],
            new AuthorizeWorker()).Build();
        MeshBusHost.ValidateOptions(host.Services);
    }

    [Theory]
    [InlineData("LineageTimeoutMs", "0")]
    [InlineData("HeartbeatBoundSeconds", "-1")]
    [InlineData("ConcurrentMessageLimit", "0")]
    [InlineData("PolicyBundleFile", "/nonexistent/policy.json")]
    [InlineData("EgressPolicyBundleFile", "/nonexistent/egress.json")]
    [InlineData("FederationPolicyBundleFile", "/nonexistent/federation.json")]
    [InlineData("EndorsementTtlSeconds", "0")]
    public void Impossible_settings_are_refused_naming_their_variable(string setting, string value)
    {
        var e = Failure($"--Authorize:{setting}={value}");
        Assert.Contains(e.Failures, f => f.Contains("Authorize__" + setting, StringComparison.Ordinal));
    }
}
