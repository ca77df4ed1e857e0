using System.Text.Json;
using MeshBus.Cli;
using Xunit;

namespace MeshBus.Policy.Tests.Cel;

public sealed class PolicyEvalCommandTests
{
    private static async Task<(int Exit, string Out)> RunAsync(string stdin, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader(stdin)));
        return (exit, output.ToString().Trim() + error.ToString().Trim());
    }

    [Fact]
    public async Task Expression_over_json_variables_prints_the_value()
    {
        var (exit, output) = await RunAsync(
            """{"intent": {"action": "read", "size": 3}, "tags": ["a", "b"]}""",
            "policy", "eval", "intent.action == 'read' && intent.size < 10 && 'b' in tags", "--vars", "-");

        Assert.Equal(0, exit);
        Assert.Equal("""{"value": true}""", output);
    }

    [Fact]
    public async Task Values_are_printed_as_json()
    {
        var (exit, output) = await RunAsync(string.Empty, "policy", "eval", "{'a': [1, 2.5, 'x', b'hi', null], 'b': duration('90s')}");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var value = doc.RootElement.GetProperty("value");
        Assert.Equal(1, value.GetProperty("a")[0].GetInt64());
        Assert.Equal(2.5, value.GetProperty("a")[1].GetDouble());
        Assert.Equal("aGk=", value.GetProperty("a")[3].GetString());
        Assert.Equal("90s", value.GetProperty("b").GetString());
    }

    [Fact]
    public async Task Variables_come_from_a_file()
    {
        var path = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(path, """{"n": 41}""");
            var (exit, output) = await RunAsync(string.Empty, "policy", "eval", "n + 1", "--vars", path);
            Assert.Equal(0, exit);
            Assert.Equal("""{"value": 42}""", output);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Evaluation_error_prints_an_error_and_exits_2()
    {
        var (exit, output) = await RunAsync("""{"m": {}}""", "policy", "eval", "m.missing == 1", "--vars", "-");

        Assert.Equal(2, exit);
        Assert.StartsWith("""{"error":""", output, StringComparison.Ordinal);
        Assert.Contains("missing", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parse_error_prints_an_error_with_the_position_and_exits_2()
    {
        var (exit, output) = await RunAsync(string.Empty, "policy", "eval", "1 + ");

        Assert.Equal(2, exit);
        Assert.Contains("1:5", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Undeclared_variable_is_an_error()
    {
        var (exit, output) = await RunAsync("""{"intent": {}}""", "policy", "eval", "intnet.action", "--vars", "-");

        Assert.Equal(2, exit);
        Assert.Contains("undeclared reference to 'intnet'", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Vars_that_are_not_a_json_object_are_an_error()
    {
        var (exit, output) = await RunAsync("[1, 2]", "policy", "eval", "true", "--vars", "-");
        Assert.Equal(2, exit);
        Assert.Contains("JSON object", output, StringComparison.Ordinal);

        (exit, output) = await RunAsync("{nope", "policy", "eval", "true", "--vars", "-");
        Assert.Equal(2, exit);
        Assert.Contains("not valid JSON", output, StringComparison.Ordinal);
    }
}
