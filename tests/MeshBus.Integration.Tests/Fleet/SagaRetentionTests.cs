using MassTransit;
using MeshBus.Persistence;
using MeshBus.TestSupport;
using MeshBus.Workers.Enforce;
using MeshBus.Workers.Enforce.Lifecycle;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Xunit;

namespace MeshBus.Integration.Tests.Fleet;

/// <summary>
/// Finished intent lifecycles leave the saga store after <c>Enforce:Retention</c>; live ones and recent ones stay.
/// On the real saga store of each engine (the rows' <c>updated_at</c> is stored differently: timestamptz, ISO text).
/// </summary>
[Collection("postgres")]
[Trait("Category", "Integration")]
public sealed class SagaRetentionTests(PostgresFixture postgres) : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "meshbus-retention-" + Guid.NewGuid().ToString("N")[..8]);
    private string _database = "";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_directory);
        _database = await postgres.CreateDatabaseAsync("retention");
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        SqliteConnection.ClearAllPools();
        await postgres.DropDatabaseAsync(_database);
        Directory.Delete(_directory, recursive: true);
    }

    [Theory(Timeout = 60_000)]
    [InlineData(StorageProvider.Postgres)]
    [InlineData(StorageProvider.Sqlite)]
    public async Task Finished_lifecycles_older_than_the_retention_are_deleted_with_their_index_and_nothing_else(StorageProvider provider)
    {
        var store = provider == StorageProvider.Postgres
            ? new SqlStoreOptions { Provider = provider, ConnectionString = _database }
            : new SqlStoreOptions { Provider = provider, ConnectionString = $"Data Source={Path.Combine(_directory, "enforce.db")}" };
        var services = new ServiceCollection();
        services.AddMassTransit(x => x.AddSagaStateMachine<IntentLifecycleStateMachine, IntentLifecycleState>().SqlRepository(store));
        await using var provided = services.BuildServiceProvider();
        var retention = provided.GetRequiredService<ISagaRetention>();
        var reader = provided.GetRequiredService<ISagaStateReader>();
        await reader.CountByStateAsync<IntentLifecycleState>("currentState"); // creates the tables

        var now = DateTimeOffset.UtcNow;
        var old = now.AddDays(-8);
        var completedLongAgo = await WriteAsync(store, "Completed", old, indexed: true);
        var haltedLongAgo = await WriteAsync(store, "Halted", old, indexed: false);
        var deniedLongAgo = await WriteAsync(store, "Denied", old, indexed: false);
        var executingLongAgo = await WriteAsync(store, "Executing", old, indexed: true);
        var completedRecently = await WriteAsync(store, "Completed", now.AddHours(-1), indexed: false);

        var sweeper = new SagaRetentionSweeper(retention, Options.Create(new EnforceOptions()), TimeProvider.System, NullLogger<SagaRetentionSweeper>.Instance);
        Assert.Equal(3, await sweeper.SweepAsync(CancellationToken.None));

        Assert.Null(await reader.LoadAsync<IntentLifecycleState>(completedLongAgo));
        Assert.Null(await reader.LoadAsync<IntentLifecycleState>(haltedLongAgo));
        Assert.Null(await reader.LoadAsync<IntentLifecycleState>(deniedLongAgo));
        Assert.NotNull(await reader.LoadAsync<IntentLifecycleState>(executingLongAgo));
        Assert.NotNull(await reader.LoadAsync<IntentLifecycleState>(completedRecently));
        Assert.Equal([executingLongAgo.ToString()], await IndexedAsync(store));
        Assert.Equal(0, await sweeper.SweepAsync(CancellationToken.None));
    }

    /// <summary>A lifecycle row as the saga repository writes it, last changed at <paramref name="updatedAt"/>.</summary>
    private static async Task<Guid> WriteAsync(SqlStoreOptions store, string state, DateTimeOffset updatedAt, bool indexed)
    {
        var id = Guid.NewGuid();
        var data = System.Text.Json.JsonSerializer.Serialize(new IntentLifecycleState { CorrelationId = id, CurrentState = state }, new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
        var type = SagaTypeName.Of<IntentLifecycleState>();
        if (store.Provider == StorageProvider.Postgres)
        {
            await using var connection = new NpgsqlConnection(store.ConnectionString);
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("INSERT INTO saga_state (saga_type, correlation_id, version, data, updated_at) VALUES (@t, @id, 1, @d::jsonb, @u)", connection);
            insert.Parameters.AddWithValue("t", type);
            insert.Parameters.AddWithValue("id", id);
            insert.Parameters.AddWithValue("d", data);
            insert.Parameters.AddWithValue("u", updatedAt);
            await insert.ExecuteNonQueryAsync();
            if (indexed)
            {
                await using var index = new NpgsqlCommand("INSERT INTO saga_index (saga_type, kind, value, correlation_id) VALUES (@t, 'agent', 'a', @id)", connection);
                index.Parameters.AddWithValue("t", type);
                index.Parameters.AddWithValue("id", id);
                await index.ExecuteNonQueryAsync();
            }
        }
        else
        {
            await using var connection = new SqliteConnection(store.ConnectionString);
            await connection.OpenAsync();
            await using var insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO saga_state (saga_type, correlation_id, version, data, updated_at) VALUES ($t, $id, 1, $d, $u)";
            insert.Parameters.AddWithValue("$t", type);
            insert.Parameters.AddWithValue("$id", id.ToString());
            insert.Parameters.AddWithValue("$d", data);
            insert.Parameters.AddWithValue("$u", updatedAt.ToUniversalTime().ToString("O"));
            await insert.ExecuteNonQueryAsync();
            if (indexed)
            {
                await using var index = connection.CreateCommand();
                index.CommandText = "INSERT INTO saga_index (saga_type, kind, value, correlation_id) VALUES ($t, 'agent', 'a', $id)";
                index.Parameters.AddWithValue("$t", type);
                index.Parameters.AddWithValue("$id", id.ToString());
                await index.ExecuteNonQueryAsync();
            }
        }

        return id;
    }

    private static async Task<List<string>> IndexedAsync(SqlStoreOptions store)
    {
        var ids = new List<string>();
        await using var connection = store.Provider == StorageProvider.Postgres ? (System.Data.Common.DbConnection)new NpgsqlConnection(store.ConnectionString) : new SqliteConnection(store.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT correlation_id FROM saga_index";
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            ids.Add(reader.GetValue(0).ToString()!);
        }

        return ids;
    }
}
