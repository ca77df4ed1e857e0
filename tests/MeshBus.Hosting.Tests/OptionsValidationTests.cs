using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Hosting.Tests;

public sealed class OptionsValidationTests
{
    private static OptionsValidationException Failure(params string[] args)
    {
        using var host = MeshBusHost.CreateBuilder(args, new EmptyWorker()).Build();
        return Assert.Throws<OptionsValidationException>(() => MeshBusHost.ValidateOptions(host.Services));
    }

    [Fact]
    public void A_missing_domain_is_named_with_its_environment_variable()
    {
        var e = Failure();
        Assert.Contains(e.Failures, f => f.Contains("MeshBus__Domain", StringComparison.Ordinal));
    }

    [Fact]
    public void RabbitMq_transport_without_host_user_and_password_names_each_variable()
    {
        var e = Failure("--MeshBus:Domain=acme.example/prod", "--MeshBus:Transport=RabbitMq");
        Assert.Contains(e.Failures, f => f.Contains("RabbitMqTransport__Host", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("RabbitMqTransport__Username", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("RabbitMqTransport__Password", StringComparison.Ordinal));
    }

    [Fact]
    public void Postgres_storage_without_connection_string_names_the_variable()
    {
        var e = Failure("--MeshBus:Domain=acme.example/prod", "--Storage:Provider=Postgres");
        Assert.Contains(e.Failures, f => f.Contains("Storage__ConnectionString", StringComparison.Ordinal));
    }

    [Fact]
    public void A_storage_pool_of_no_connections_names_the_variable()
    {
        var e = Failure("--MeshBus:Domain=acme.example/prod", "--Storage:PoolSize=0");
        Assert.Contains(e.Failures, f => f.Contains("Storage__PoolSize", StringComparison.Ordinal));
    }

    [Fact]
    public void A_complete_configuration_validates()
    {
        using var host = MeshBusHost.CreateBuilder(
            ["--MeshBus:Domain=acme.example/prod", "--MeshBus:Transport=RabbitMq", "--RabbitMqTransport:Host=localhost",
             "--RabbitMqTransport:Username=u", "--RabbitMqTransport:Password=p"],
            new EmptyWorker()).Build();
        MeshBusHost.ValidateOptions(host.Services);
    }

    [Fact]
    public void Configured_redelivery_delays_replace_the_defaults_instead_of_being_appended_to_them()
    {
        using var configured = MeshBusHost.CreateBuilder(["--MeshBus:Domain=acme.example/prod", "--MeshBus:RedeliverySeconds:0=2"], new EmptyWorker()).Build();
        Assert.Equal([2.0], configured.Services.GetRequiredService<IOptions<MeshBusOptions>>().Value.RedeliveryIntervals);

        using var defaults = MeshBusHost.CreateBuilder(["--MeshBus:Domain=acme.example/prod"], new EmptyWorker()).Build();
        Assert.Equal([1.0, 5, 15], defaults.Services.GetRequiredService<IOptions<MeshBusOptions>>().Value.RedeliveryIntervals);
    }

    [Fact]
    public void A_non_positive_redelivery_delay_is_refused()
    {
        var e = Failure("--MeshBus:Domain=acme.example/prod", "--MeshBus:RedeliverySeconds:0=0");
        Assert.Contains(e.Failures, f => f.Contains("MeshBus:RedeliverySeconds", StringComparison.Ordinal));
    }
}
