using MeshBus.Cli;

namespace MeshBus.Policy.Tests;

/// <summary>Runs <c>meshbus</c> in process with captured output.</summary>
internal static class TestCli
{
    public static Task<(int Code, string Out, string Err)> Run(params string[] args) => RunWithInput("", args);

    public static async Task<(int Code, string Out, string Err)> RunWithInput(string input, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(o, e, new StringReader(input)));
        return (code, o.ToString(), e.ToString());
    }
}
