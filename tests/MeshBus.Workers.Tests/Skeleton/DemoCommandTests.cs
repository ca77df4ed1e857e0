using System.Text.Json;
using MeshBus.Cli;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>The README's main command, run as a user runs it: the embedded mesh must walk every step.</summary>
public sealed class DemoCommandTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "meshbus-demo-test-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Demo_walks_grant_denial_halt_evidence_and_lineage_on_the_embedded_default()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await CommandLineApp.RunAsync(["demo", "--data", _data, "--json"], new CliConsole(output, error, TextReader.Null));

        Assert.True(code == 0, output.ToString() + error);
        using var summary = JsonDocument.Parse(output.ToString());
        Assert.True(summary.RootElement.GetProperty("ok").GetBoolean());
        var steps = summary.RootElement.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToList();
        Assert.Contains("allowed intent", steps);
        Assert.Contains("denied intent", steps);
        Assert.Contains("saga halted", steps);
        Assert.Contains("evidence verified offline", steps);
        Assert.Contains("tampered evidence refused", steps);
        Assert.Contains("lineage verified", steps);
        Assert.True(File.Exists(Path.Combine(_data, "evidence.json")));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
