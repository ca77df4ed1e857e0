using Testcontainers.RabbitMq;

namespace MeshBus.TestSupport;

/// <summary>RabbitMQ for integration tests; see <see cref="ServerFixtureBase"/> for the lookup order.</summary>
public sealed class RabbitMqFixture : ServerFixtureBase
{
    /// <summary>The variable naming the broker, e.g. <c>amqp://guest:guest@127.0.0.1:5672/</c>.</summary>
    public const string Variable = "MESH_TEST_RABBITMQ_URI";

    private RabbitMqContainer? _container;

    /// <summary>The AMQP URI (user, password, host, port, vhost).</summary>
    public Uri AmqpUri { get; private set; } = null!;

    /// <inheritdoc />
    protected override string EnvVar => Variable;

    /// <inheritdoc />
    protected override int DefaultPort => 5672;

    /// <inheritdoc />
    protected override void UseExternal(string address) => AmqpUri = new Uri(address);

    /// <inheritdoc />
    protected override async Task<bool> TryStartContainerAsync()
    {
        _container = new RabbitMqBuilder("rabbitmq:3.13-management").Build();
        await _container.StartAsync();
        AmqpUri = new Uri(_container.GetConnectionString());
        return true;
    }

    /// <inheritdoc />
    protected override void UseLocal() => AmqpUri = new Uri("amqp://guest:guest@127.0.0.1:5672/");

    /// <inheritdoc />
    public override async Task DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }
    }
}
