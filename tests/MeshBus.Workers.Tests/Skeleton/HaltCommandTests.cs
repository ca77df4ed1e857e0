using MeshBus.Cli;
using MeshBus.Cli.Commands.Halt;
using MeshBus.Contracts;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

public sealed class HaltCommandTests
{
    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader("")));
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Halt_without_a_scope_is_a_usage_error()
    {
        var (code, _, err) = await RunAsync("halt", "--domain", "acme.example/prod", "--rabbitmq", "amqp://guest:guest@127.0.0.1:5672/");
        Assert.Equal(2, code);
        Assert.Contains("exactly one of --intent, --agent, --peer, --key", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Halt_with_two_scopes_is_a_usage_error()
    {
        var (code, _, _) = await RunAsync("halt", "--agent", "a", "--peer", "b", "--domain", "acme.example/prod", "--rabbitmq", "amqp://guest:guest@127.0.0.1:5672/");
        Assert.Equal(2, code);
    }

    [Fact]
    public async Task Halt_of_an_intent_needs_a_uuid()
    {
        var (code, _, err) = await RunAsync("halt", "--intent", "not-a-uuid", "--domain", "acme.example/prod", "--rabbitmq", "amqp://guest:guest@127.0.0.1:5672/");
        Assert.Equal(2, code);
        Assert.Contains("UUID", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Execution_halt_carries_the_intent_id_and_the_operator_reason()
    {
        var id = Guid.NewGuid();
        var halt = HaltCommand.Create("acme.example/prod", GovernanceScope.Execution, id.ToString(), "stop", DateTimeOffset.UnixEpoch);
        Assert.Equal(id, halt.IntentId);
        Assert.Equal(GovernanceReason.OperatorHalt, halt.Reason);
    }

    [Fact(Timeout = 60_000)]
    public async Task Halt_with_an_unreachable_broker_ends_with_one_line_and_exit_1_within_its_bound()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (code, _, err) = await RunAsync("halt", "--intent", Guid.NewGuid().ToString(), "--domain", "acme.example/prod", "--rabbitmq", "amqp://u:p@127.0.0.1:1/");
        Assert.Equal(1, code);
        Assert.Contains("did not confirm the halt", err, StringComparison.Ordinal);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.True(watch.Elapsed < MeshBus.Cli.Commands.Halt.HaltCommand.BrokerTimeout + TimeSpan.FromSeconds(15), watch.Elapsed.ToString());
    }

    [Theory(Timeout = 60_000)]
    [InlineData("--store", "not-sqlite")]
    [InlineData("--postgres", "Host=127.0.0.1;Port=1;Username=x;Timeout=5")]
    public async Task Lineage_verify_of_a_store_it_cannot_read_ends_with_one_line_and_exit_2(string option, string value)
    {
        var path = Path.GetTempFileName();
        await File.WriteAllTextAsync(path, "this is not a SQLite database");
        try
        {
            var (code, _, err) = await RunAsync("lineage", "verify", option, value == "not-sqlite" ? path : value);
            Assert.Equal(2, code);
            Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("meshbus lineage verify: error:", err, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
