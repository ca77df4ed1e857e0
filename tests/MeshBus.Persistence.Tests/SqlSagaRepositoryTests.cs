using MassTransit;
using MeshBus.Persistence.TestHost;
using MeshBus.TestSupport;
using Xunit;

namespace MeshBus.Persistence.Tests;

[Collection("servers")]
[Trait("Category", "Integration")]
public sealed class SqlSagaRepositoryTests(PostgresFixture postgres)
{
    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.Postgres)]
    public async Task An_update_from_a_stale_version_is_rejected_and_the_newer_state_kept(StorageProvider provider)
    {
        var database = await OpenAsync(provider);
        var id = Guid.NewGuid();
        await WriteAsync(database, s => s.InsertAsync(new CounterState { CorrelationId = id, CurrentState = "Counting", Count = 1 }, default));

        CounterState stale = null!;
        await WriteAsync(database, async s => stale = (await s.LoadAsync(id, default))!);
        await WriteAsync(database, async s =>
        {
            var fresh = (await s.LoadAsync(id, default))!;
            fresh.Count = 2;
            await s.UpdateAsync(fresh, default);
        });

        stale.Count = 99;
        await Assert.ThrowsAsync<ConcurrencyException>(() => WriteAsync(database, s => s.UpdateAsync(stale, default)));
        await Assert.ThrowsAsync<ConcurrencyException>(() => WriteAsync(database, s => s.DeleteAsync(stale, default)));

        var stored = await Reader(database).LoadAsync<CounterState>(id);
        Assert.Equal(2, stored!.Count);
        Assert.Equal(2, stored.Version);
    }

    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.Postgres)]
    public async Task A_second_insert_of_the_same_id_is_a_concurrency_conflict(StorageProvider provider)
    {
        var database = await OpenAsync(provider);
        var id = Guid.NewGuid();
        await WriteAsync(database, s => s.InsertAsync(new CounterState { CorrelationId = id, Count = 1 }, default));

        await Assert.ThrowsAsync<ConcurrencyException>(() => WriteAsync(database, s => s.InsertAsync(new CounterState { CorrelationId = id, Count = 7 }, default)));
        var inserted = true;
        await WriteAsync(database, async s => inserted = await s.TryInsertAsync(new CounterState { CorrelationId = id, Count = 8 }, default));

        Assert.False(inserted);
        Assert.Equal(1, (await Reader(database).LoadAsync<CounterState>(id))!.Count);
    }

    [Theory]
    [InlineData(StorageProvider.Sqlite)]
    [InlineData(StorageProvider.Postgres)]
    public async Task Index_rows_change_only_when_the_saga_state_commits(StorageProvider provider)
    {
        var database = await OpenAsync(provider);
        var index = Reader(database);
        var id = Guid.NewGuid();
        var other = Guid.NewGuid();
        await WriteAsync(database, s => s.InsertAsync(new CounterState { CorrelationId = id, Owner = "peer-a", CurrentState = "Counting" }, default));
        await WriteAsync(database, s => s.InsertAsync(new CounterState { CorrelationId = other, Owner = "peer-a", CurrentState = "Counting" }, default));
        Assert.Equal(new[] { id, other }.Order(), (await index.FindAsync<CounterState>("owner", "peer-a")).Order());

        // Written but rolled back: neither state nor index move.
        await using (var session = await SqlSagaSession<CounterState>.BeginAsync(database, default))
        {
            var saga = (await session.LoadAsync(id, default))!;
            saga.Owner = "peer-b";
            await session.UpdateAsync(saga, default);
        }

        Assert.Equal(new[] { id, other }.Order(), (await index.FindAsync<CounterState>("owner", "peer-a")).Order());
        Assert.Empty(await index.FindAsync<CounterState>("owner", "peer-b"));

        await WriteAsync(database, async s =>
        {
            var saga = (await s.LoadAsync(id, default))!;
            saga.Owner = "peer-b";
            saga.CurrentState = "Halted";
            await s.UpdateAsync(saga, default);
        });
        Assert.Equal([other], await index.FindAsync<CounterState>("owner", "peer-a"));
        Assert.Equal([id], await index.FindAsync<CounterState>("owner", "peer-b"));
        Assert.Equal([id], await index.FindAsync<CounterState>("state", "Halted"));

        await WriteAsync(database, async s => await s.DeleteAsync((await s.LoadAsync(id, default))!, default));
        Assert.Empty(await index.FindAsync<CounterState>("owner", "peer-b"));
        Assert.Null(await index.LoadAsync<CounterState>(id));
    }

    [Fact]
    public async Task Index_keys_are_derived_and_not_stored_in_the_state_json()
    {
        var json = SagaStateSerializer.Serialize(new CounterState { CorrelationId = Guid.NewGuid(), Owner = "o", CurrentState = "Counting" });

        Assert.DoesNotContain("indexKeys", json, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("\"owner\":\"o\"", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Querying_an_unregistered_saga_type_names_it()
    {
        var index = Reader(await OpenAsync(StorageProvider.Sqlite));

        var error = await Assert.ThrowsAsync<ArgumentException>(() => index.FindAsync("No.Such.Saga", "owner", "x"));
        Assert.Contains("No.Such.Saga", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("saga state")]
    [InlineData("x;DROP TABLE y")]
    [InlineData("")]
    public void Table_names_that_are_not_plain_identifiers_are_refused(string table)
    {
        var options = new SqlStoreOptions { ConnectionString = "Data Source=x.db", SagaTable = table };

        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("SagaTable", error.Message, StringComparison.Ordinal);
    }

    private async Task<SqlDatabase> OpenAsync(StorageProvider provider)
    {
        var database = new SqlDatabase(await TestStores.CreateAsync(provider, postgres));
        await database.EnsureSchemaAsync(default);
        return database;
    }

    private static SqlSagaQueries Reader(SqlDatabase database) => new([new SqlSagaBinding(SagaTypeName.Of<CounterState>(), database)]);

    private static async Task WriteAsync(SqlDatabase database, Func<SqlSagaSession<CounterState>, Task> work)
    {
        await using var session = await SqlSagaSession<CounterState>.BeginAsync(database, default);
        await work(session);
        await session.CommitAsync(default);
    }
}
