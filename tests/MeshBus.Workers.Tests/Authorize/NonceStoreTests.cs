using MeshBus.Hosting;
using MeshBus.TestSupport;
using MeshBus.Workers.Authorize.Checks;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize;

/// <summary>The nonce table's contract, on SQLite and on PostgreSQL.</summary>
public abstract class NonceStoreTestsBase
{
    protected static readonly DateTimeOffset Now = new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero);

    protected abstract Task<INonceStore> OpenAsync();

    [Fact]
    public async Task First_intent_keeps_the_nonce_and_a_redelivery_of_it_is_not_a_reuse()
    {
        var store = await OpenAsync();
        Guid first = Guid.NewGuid(), second = Guid.NewGuid();

        Assert.Equal(first, await store.ClaimAsync("agent-a", "n1", first, Now.AddMinutes(5), default));
        Assert.Equal(first, await store.ClaimAsync("agent-a", "n1", first, Now.AddMinutes(5), default));
        Assert.Equal(first, await store.ClaimAsync("agent-a", "n1", second, Now.AddMinutes(5), default));
        // Nonces are per agent.
        Assert.Equal(second, await store.ClaimAsync("agent-b", "n1", second, Now.AddMinutes(5), default));
    }

    [Fact]
    public async Task Concurrent_claims_of_one_nonce_agree_on_a_single_winner()
    {
        var store = await OpenAsync();
        var ids = Enumerable.Range(0, 16).Select(_ => Guid.NewGuid()).ToList();

        var winners = await Task.WhenAll(ids.Select(id => Task.Run(() => store.ClaimAsync("agent-a", "race", id, Now.AddMinutes(5), default))));

        var winner = Assert.Single(winners.Distinct());
        Assert.Contains(winner, ids);
    }

    [Fact]
    public async Task Pruning_forgets_only_nonces_past_their_keep_until()
    {
        var store = await OpenAsync();
        Guid old = Guid.NewGuid(), kept = Guid.NewGuid(), later = Guid.NewGuid();
        await store.ClaimAsync("agent-a", "old", old, Now.AddMinutes(-1), default);
        await store.ClaimAsync("agent-a", "kept", kept, Now.AddMinutes(1), default);

        Assert.Equal(1, await store.PruneAsync(Now, default));

        Assert.Equal(later, await store.ClaimAsync("agent-a", "old", later, Now.AddMinutes(5), default));
        Assert.Equal(kept, await store.ClaimAsync("agent-a", "kept", later, Now.AddMinutes(5), default));
    }
}

public sealed class SqliteNonceStoreTests : NonceStoreTestsBase, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-nonce-" + Guid.NewGuid().ToString("N"));

    protected override Task<INonceStore> OpenAsync()
    {
        Directory.CreateDirectory(_dir);
        return Task.FromResult<INonceStore>(new SqliteNonceStore(Path.Combine(_dir, "authorize.db")));
    }

    [Fact]
    public async Task Many_concurrent_claims_of_many_nonces_each_get_their_nonce_s_first_holder()
    {
        // They land in shared group commits: every caller must still get its own nonce's answer.
        var store = await OpenAsync();
        var claims = Enumerable.Range(0, 200).Select(i => (Nonce: "n" + (i % 40), Id: Guid.NewGuid())).ToList();

        var holders = await Task.WhenAll(claims.Select(c => Task.Run(() => store.ClaimAsync("agent-a", c.Nonce, c.Id, Now.AddMinutes(5), default))));

        foreach (var group in claims.Zip(holders).GroupBy(x => x.First.Nonce))
        {
            var winner = Assert.Single(group.Select(x => x.Second).Distinct());
            Assert.Contains(winner, group.Select(x => x.First.Id));
            // Later claims, batched or not, keep answering the same holder.
            Assert.Equal(winner, await store.ClaimAsync("agent-a", group.Key, Guid.NewGuid(), Now.AddMinutes(5), default));
        }
    }

    [Fact]
    public async Task A_claim_that_cannot_be_committed_fails_instead_of_answering()
    {
        var store = await OpenAsync();
        await store.ClaimAsync("agent-a", "n1", Guid.NewGuid(), Now.AddMinutes(5), default);
        using (var conn = new Microsoft.Data.Sqlite.SqliteConnection("Data Source=" + Path.Combine(_dir, "authorize.db")))
        {
            conn.Open();
            using var drop = conn.CreateCommand();
            drop.CommandText = "DROP TABLE authorize_nonces";
            drop.ExecuteNonQuery();
        }

        var claims = Enumerable.Range(0, 8).Select(_ => store.ClaimAsync("agent-a", "n2", Guid.NewGuid(), Now.AddMinutes(5), default)).ToList();

        foreach (var claim in claims)
        {
            await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => claim.WaitAsync(TimeSpan.FromSeconds(30)));
        }
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dir, true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

[Collection("rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class PostgresNonceStoreTests(PostgresFixture postgres) : NonceStoreTestsBase, IAsyncLifetime
{
    private PostgresNonceStore? _store;

    protected override async Task<INonceStore> OpenAsync() => _store = new PostgresNonceStore(await postgres.CreateDatabaseAsync("nonce"));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }
}

public sealed class StoragePoolTests
{
    [Fact]
    public void The_pool_is_bounded_unless_the_connection_string_names_its_own_size()
    {
        Assert.Contains("Maximum Pool Size=16", MeshBusStorage.Bounded("Host=db;Username=u", 16), StringComparison.Ordinal);
        Assert.Contains("Maximum Pool Size=40", MeshBusStorage.Bounded("Host=db;Username=u;Maximum Pool Size=40", 16), StringComparison.Ordinal);
    }
}
