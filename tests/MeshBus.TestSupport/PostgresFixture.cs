using Npgsql;
using Testcontainers.PostgreSql;

namespace MeshBus.TestSupport;

/// <summary>PostgreSQL for integration tests; each test asks for a fresh database of its own.</summary>
public sealed class PostgresFixture : ServerFixtureBase
{
    /// <summary>The variable naming the server, e.g. <c>Host=127.0.0.1;Port=5432;Username=postgres</c>.</summary>
    public const string Variable = "MESH_TEST_POSTGRES";

    private PostgreSqlContainer? _container;

    /// <summary>Connection string to the server's maintenance database.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <inheritdoc />
    protected override string EnvVar => Variable;

    /// <inheritdoc />
    protected override int DefaultPort => 5432;

    /// <inheritdoc />
    protected override void UseExternal(string address) => ConnectionString = address;

    /// <inheritdoc />
    protected override async Task<bool> TryStartContainerAsync()
    {
        _container = new PostgreSqlBuilder("postgres:15").Build();
        await _container.StartAsync();
        ConnectionString = _container.GetConnectionString();
        return true;
    }

    /// <inheritdoc />
    protected override void UseLocal() => ConnectionString = "Host=127.0.0.1;Port=5432;Username=postgres";

    /// <summary>Creates an empty database with a unique name and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "t")
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 33)].ToLowerInvariant();
        await using (var conn = new NpgsqlConnection(ConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/>, closing what is still connected to it.</summary>
    public async Task DropDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        if (string.IsNullOrEmpty(name) || name.Contains('"', StringComparison.Ordinal))
        {
            throw new ArgumentException($"not a database made by {nameof(CreateDatabaseAsync)}: {name}", nameof(connectionString));
        }

        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", conn);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <inheritdoc />
    public override async Task DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
    }
}
