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
}
