using NATS.Client.Core;
using NATS.Net;

namespace MeshBus.TestSupport;

/// <summary>
/// NATS with JetStream for integration tests. There is no Testcontainers module for NATS in the pinned set, so the
/// order is: the variable, then a local server on 4222 (started by ./scripts/test.sh).
/// </summary>
public sealed class NatsFixture : ServerFixtureBase
{
    /// <summary>The variable naming the server, e.g. <c>nats://127.0.0.1:4222</c>.</summary>
    public const string Variable = "MESH_TEST_NATS_URL";

    /// <summary>The server URL.</summary>
    public string Url { get; private set; } = "";

    /// <inheritdoc />
    protected override string EnvVar => Variable;

    /// <inheritdoc />
    protected override int DefaultPort => 4222;

    /// <inheritdoc />
    protected override void UseExternal(string address) => Url = address;

    /// <inheritdoc />
    protected override Task<bool> TryStartContainerAsync() => Task.FromResult(false);

    /// <inheritdoc />
    protected override void UseLocal() => Url = "nats://127.0.0.1:4222";

    /// <summary>A new connected client; the caller disposes it.</summary>
    public async Task<NatsClient> ConnectAsync()
    {
        var client = new NatsClient(new NatsOpts { Url = Url, Name = "meshbus-tests" });
        await client.ConnectAsync();
        if (client.Connection.ServerInfo?.JetStreamAvailable != true)
        {
            await client.DisposeAsync();
            throw new InvalidOperationException($"NATS at {Url} has no JetStream: start nats-server with -js.");
        }

        return client;
    }
}
