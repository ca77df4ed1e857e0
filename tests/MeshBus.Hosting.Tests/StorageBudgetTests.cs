using Microsoft.Extensions.Configuration;
using Npgsql;
using Xunit;

namespace MeshBus.Hosting.Tests;

/// <summary>
/// Every PostgreSQL pool a worker opens is bounded by <c>Storage:PoolSize</c> (issue 16: nine processes ran a default
/// PostgreSQL out of connections). The saga and schedule store open connections by connection string, so the bound
/// must be in that string: Npgsql's default would be 100 per process.
/// </summary>
public sealed class StorageBudgetTests
{
    private const string Database = "Host=db.internal;Port=5432;Username=meshbus;Password=secret;Database=acme";

    private static IConfiguration Settings(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string?> { ["Storage:Provider"] = "Postgres", ["Storage:ConnectionString"] = Database };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }

        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }

    [Fact]
    public void The_saga_and_schedule_store_is_bounded_by_the_default_pool_size()
    {
        var store = MeshBusStorage.SqlStore(Settings(), "enforce.db");
        Assert.Equal(StorageOptions.DefaultPoolSize, new NpgsqlConnectionStringBuilder(store.ConnectionString).MaxPoolSize);
        Assert.Equal("acme", new NpgsqlConnectionStringBuilder(store.ConnectionString).Database);
    }

    [Fact]
    public void The_saga_and_schedule_store_is_bounded_by_a_configured_pool_size()
    {
        var store = MeshBusStorage.SqlStore(Settings(("Storage:PoolSize", "3")), "enforce.db");
        Assert.Equal(3, new NpgsqlConnectionStringBuilder(store.ConnectionString).MaxPoolSize);
    }

    [Fact]
    public void A_pool_size_named_in_the_connection_string_is_kept()
    {
        var store = MeshBusStorage.SqlStore(Settings(("Storage:ConnectionString", Database + ";Maximum Pool Size=7")), "enforce.db");
        Assert.Equal(7, new NpgsqlConnectionStringBuilder(store.ConnectionString).MaxPoolSize);
    }

    [Fact]
    public void The_default_budget_of_a_compose_domain_fits_a_default_PostgreSQL_with_room_to_spare()
    {
        // Pools per worker (docs/operations.md): Authorize 3 (lineage log, its own tables and peer sync state,
        // sagas/schedules), Lineage 2 (lineage log, schedules), Sync 3 (peer sync state, the bridge's store,
        // watchdog sagas/schedules), Enforce 1 (sagas and schedules). Compose: two replicas of each, three of Sync;
        // plus one unpooled health probe per process.
        const int processes = 2 + 2 + 2 + 3;
        var pools = (2 * 3) + (2 * 2) + (3 * 3) + (2 * 1);
        var budget = (pools * StorageOptions.DefaultPoolSize) + processes;
        Assert.True(budget <= 80, $"a compose domain may open {budget} connections at the default pool size; PostgreSQL's default max_connections is 100 (3 reserved)");
    }

    [Fact]
    public void A_malformed_connection_string_names_the_variable()
    {
        using var host = MeshBusHost.CreateBuilder(
            ["--MeshBus:Domain=acme.example/prod", "--Storage:Provider=Postgres", "--Storage:ConnectionString=Host=db;Password=secret;nonsense"],
            new EmptyWorker()).Build();
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => MeshBusHost.ValidateOptions(host.Services));
        Assert.Contains(e.Failures, f => f.Contains("Storage__ConnectionString", StringComparison.Ordinal));
        Assert.DoesNotContain(e.Failures, f => f.Contains("secret", StringComparison.Ordinal));
    }
}
