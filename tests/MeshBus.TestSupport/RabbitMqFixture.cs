using System.Diagnostics;
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

    /// <summary>The variable naming a <c>rabbitmqctl</c> for the broker (the README test command writes one).</summary>
    public const string CtlVariable = "MESH_TEST_RABBITMQCTL";

    /// <summary>
    /// Runs <c>rabbitmqctl</c> against the test broker (users, permissions, vhosts): the command named by
    /// <c>MESH_TEST_RABBITMQCTL</c>, or the one inside the container. Returns its standard output; a non-zero exit
    /// or a run longer than <paramref name="timeout"/> (default 60 s) throws with the command's output.
    /// </summary>
    public async Task<string> RabbitMqCtlAsync(IReadOnlyList<string> arguments, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        if (_container is not null)
        {
            var result = await _container.ExecAsync(["rabbitmqctl", .. arguments], cts.Token);
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} exited {result.ExitCode}: {result.Stderr}{result.Stdout}");
            }

            return result.Stdout;
        }

        var ctl = Environment.GetEnvironmentVariable(CtlVariable);
        if (string.IsNullOrWhiteSpace(ctl))
        {
            throw new InvalidOperationException(
                $"This test manages the broker (users, vhosts) and needs {CtlVariable}: run it through ./scripts/test.sh, which sets it.");
        }

        var start = new ProcessStartInfo(ctl) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{ctl} did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = process.StandardError.ReadToEndAsync(cts.Token);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"rabbitmqctl {string.Join(' ', arguments)} did not finish in time");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', arguments)} exited {process.ExitCode}: {await stderr}{await stdout}");
        }

        return await stdout;
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
