using MeshBus.TestSupport;
using Xunit;

namespace MeshBus.Workers.Tests;

/// <summary>Tests on the shared RabbitMQ and PostgreSQL (xunit 2 discovers collection definitions only in the test assembly).</summary>
[CollectionDefinition("rabbitmq-postgres")]
public sealed class RabbitMqPostgresCollection : ICollectionFixture<RabbitMqFixture>, ICollectionFixture<PostgresFixture>;
