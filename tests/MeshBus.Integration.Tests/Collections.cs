using MeshBus.TestSupport;
using Xunit;

namespace MeshBus.Integration.Tests;

/// <summary>Tests on the shared RabbitMQ (xunit 2 discovers collection definitions only in the test assembly).</summary>
[CollectionDefinition("rabbitmq")]
public sealed class RabbitMqCollection : ICollectionFixture<RabbitMqFixture>;

/// <summary>Tests on the shared NATS with JetStream.</summary>
[CollectionDefinition("nats")]
public sealed class NatsCollection : ICollectionFixture<NatsFixture>;

/// <summary>Tests on the shared PostgreSQL.</summary>
[CollectionDefinition("postgres")]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;

/// <summary>Tests on the shared RabbitMQ and PostgreSQL together (workers with a PostgreSQL store on RabbitMQ).</summary>
[CollectionDefinition("rabbitmq-postgres")]
public sealed class RabbitMqPostgresCollection : ICollectionFixture<RabbitMqFixture>, ICollectionFixture<PostgresFixture>;

/// <summary>Tests on the shared NATS (with the federation test users) and PostgreSQL together (the bridge's fleet setup).</summary>
[CollectionDefinition("nats-postgres")]
public sealed class NatsPostgresCollection : ICollectionFixture<NatsFixture>, ICollectionFixture<PostgresFixture>;

/// <summary>Two domains each on a RabbitMQ virtual host and a PostgreSQL database of its own, joined over the shared NATS.</summary>
[CollectionDefinition("nats-rabbitmq-postgres")]
public sealed class NatsRabbitMqPostgresCollection : ICollectionFixture<NatsFixture>, ICollectionFixture<RabbitMqFixture>, ICollectionFixture<PostgresFixture>;
