using System.Net.Sockets;
using Xunit;

namespace MeshBus.TestSupport;

/// <summary>
/// Common order for finding a server for integration tests (STYLE.md 9):
/// 1. the address in an environment variable (the README test command sets it after starting the server);
/// 2. Testcontainers, where a Docker engine answers;
/// 3. a server already listening on its default loopback port;
/// otherwise a clear error naming the variable.
/// </summary>
public abstract class ServerFixtureBase : IAsyncLifetime
{
    /// <summary>How the server was found, for test output.</summary>
    public string Source { get; protected set; } = "";

    /// <summary>The environment variable that names the server.</summary>
    protected abstract string EnvVar { get; }

    /// <summary>The default loopback port probed as the last resort.</summary>
    protected abstract int DefaultPort { get; }

    /// <summary>Called with the address from the environment variable.</summary>
    protected abstract void UseExternal(string address);

    /// <summary>Starts a container; returns false when no Docker engine answers.</summary>
    protected abstract Task<bool> TryStartContainerAsync();

    /// <summary>Uses the local server on the default port.</summary>
    protected abstract void UseLocal();

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvVar);
        if (!string.IsNullOrWhiteSpace(external))
        {
            UseExternal(external);
            Source = "env:" + EnvVar;
            return;
        }

        if (Environment.GetEnvironmentVariable("MESH_TEST_NO_DOCKER") != "1")
        {
            try
            {
                if (await TryStartContainerAsync())
                {
                    Source = "testcontainers";
                    return;
                }
            }
            catch (Exception e) when (e.GetType().Name.Contains("DockerUnavailable", StringComparison.Ordinal) || e is TimeoutException)
            {
                Source = "no-docker";
            }
        }

        if (await CanConnectAsync("127.0.0.1", DefaultPort))
        {
            UseLocal();
            Source += " -> local 127.0.0.1:" + DefaultPort;
            return;
        }

        throw new InvalidOperationException(
            $"No server for integration tests: {EnvVar} is not set, no Docker engine answered and nothing listens on 127.0.0.1:{DefaultPort}. " +
            $"Run ./scripts/test.sh (it starts the servers) or set {EnvVar}.");
    }

    /// <inheritdoc />
    public virtual Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Whether a TCP connection opens within two seconds.</summary>
    protected static async Task<bool> CanConnectAsync(string host, int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(host, port).WaitAsync(TimeSpan.FromSeconds(2));
            return true;
        }
        catch (Exception e) when (e is SocketException or TimeoutException)
        {
            return false;
        }
    }
}
