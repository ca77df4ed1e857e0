using MeshBus.TestSupport;
using Npgsql;
using RabbitMQ.Client;
using Xunit;

namespace MeshBus.Integration.Tests.Foundation;

[Collection("rabbitmq")]
[Trait("Category", "Integration")]
public sealed class RabbitMqFixtureTests(RabbitMqFixture rabbit)
{
    [Fact]
    public async Task The_RabbitMQ_fixture_finds_a_broker_that_accepts_an_AMQP_connection()
    {
        var factory = new ConnectionFactory { Uri = rabbit.AmqpUri };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var queue = await channel.QueueDeclareAsync("", durable: false, exclusive: true, autoDelete: true);
        Assert.StartsWith("amq.gen-", queue.QueueName, StringComparison.Ordinal);
    }
}

[Collection("nats")]
[Trait("Category", "Integration")]
public sealed class NatsFixtureTests(NatsFixture nats)
{
    [Fact]
    public async Task The_NATS_fixture_finds_a_server_with_JetStream()
    {
        await using var client = await nats.ConnectAsync();
        Assert.True(client.Connection.ServerInfo!.JetStreamAvailable);
    }
}

[Collection("postgres")]
[Trait("Category", "Integration")]
public sealed class PostgresFixtureTests(PostgresFixture postgres)
{
    [Fact]
    public async Task The_PostgreSQL_fixture_creates_a_fresh_database_per_test()
    {
        var first = await postgres.CreateDatabaseAsync("fixture");
        var second = await postgres.CreateDatabaseAsync("fixture");
        Assert.NotEqual(first, second);
        await using var connection = new NpgsqlConnection(first);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT current_database()", connection);
        Assert.Equal(new NpgsqlConnectionStringBuilder(first).Database, (string?)await command.ExecuteScalarAsync());
    }
}
