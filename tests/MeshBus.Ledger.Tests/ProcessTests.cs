using System.Diagnostics;
using MeshBus.TestSupport;

namespace MeshBus.Ledger.Tests;

/// <summary>Appenders in other processes (tests/MeshBus.Ledger.TestHost): two writers on one store; kill -9 during a burst.</summary>
public abstract class ProcessContract
{
    protected abstract Task<(string Kind, string Target)> StoreAsync();

    protected abstract Task<SqlLineageLog> OpenAsync(string target);

    private static Process Start(string kind, string target, string prefix, long count)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(HostPath());
        foreach (var a in new[] { kind, target, prefix, count.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        return Process.Start(psi)!;
    }

    // Run the host from its own output directory: its deps.json there matches its files (the test's directory holds
    // the test's own, possibly different, versions of shared packages).
    private static string HostPath()
    {
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var own = Path.GetFullPath(Path.Combine(baseDir.FullName, "..", "..", "..", "..", "MeshBus.Ledger.TestHost", "bin", baseDir.Parent!.Name, baseDir.Name, "MeshBus.Ledger.TestHost.dll"));
        return File.Exists(own) ? own : Path.Combine(baseDir.FullName, "MeshBus.Ledger.TestHost.dll");
    }

    private static async Task<List<(string Key, long Index)>> AcksAsync(Process p, int killAfter = int.MaxValue)
    {
        var acks = new List<(string, long)>();
        string? line;
        while ((line = await p.StandardOutput.ReadLineAsync()) is not null)
        {
            if (line.StartsWith("ACK ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                acks.Add((parts[1], long.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture)));
                if (acks.Count == killAfter)
                {
                    p.Kill(entireProcessTree: true); // SIGKILL on Linux: no flush, no dispose
                }
            }
        }

        await p.WaitForExitAsync();
        return acks;
    }

    [Fact]
    public async Task Two_processes_appending_to_one_store_leave_no_gap_and_no_duplicate()
    {
        var (kind, target) = await StoreAsync();
        using var a = Start(kind, target, "a", 600);
        using var b = Start(kind, target, "b", 600);
        var acks = await Task.WhenAll(AcksAsync(a), AcksAsync(b));
        Assert.True(a.ExitCode == 0, await a.StandardError.ReadToEndAsync());
        Assert.Equal(0, b.ExitCode);
        var all = acks.SelectMany(x => x).ToList();
        Assert.Equal(Enumerable.Range(0, 1200).Select(i => (long)i), all.Select(x => x.Index).Order());
        await using var log = await OpenAsync(target);
        var report = await LineageAudit.RunAsync(log);
        Assert.True(report.Ok, string.Join("; ", report.Findings.Select(f => f.Message)));
        Assert.Equal(1200, report.Entries);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Every_acknowledged_append_survives_kill_9_during_a_burst()
    {
        var (kind, target) = await StoreAsync();
        using var p = Start(kind, target, "k", 1_000_000);
        var acks = await AcksAsync(p, killAfter: 800);
        Assert.True(acks.Count >= 800);
        await using var log = await OpenAsync(target);
        foreach (var (key, index) in acks)
        {
            var rec = await log.GetByKeyAsync(key);
            Assert.True(rec is not null, $"acknowledged {key} at {index} is lost");
            Assert.Equal(index, rec.Index);
        }

        var report = await LineageAudit.RunAsync(log);
        Assert.True(report.Ok, string.Join("; ", report.Findings.Select(f => f.Message)));
        Assert.True(report.Entries >= acks.Count);

        // The log goes on after the crash.
        Assert.Equal(report.Entries, (await log.AppendAsync(new LineageEntry("after:1", "TestEvent", [1]))).Index);
    }
}

public sealed class SqliteProcessTests : ProcessContract, IDisposable
{
    private readonly TempDir _dir = new();

    protected override Task<(string Kind, string Target)> StoreAsync() => Task.FromResult(("sqlite", _dir.File("shared.db")));

    protected override Task<SqlLineageLog> OpenAsync(string target) => Task.FromResult(LineageLogs.OpenSqlite(target));

    public void Dispose() => _dir.Dispose();
}

[Collection("postgres")]
[Trait("Category", "Integration")]
public sealed class PostgresProcessTests(PostgresFixture postgres) : ProcessContract
{
    protected override async Task<(string Kind, string Target)> StoreAsync() => ("postgres", await postgres.CreateDatabaseAsync("ledgerproc"));

    protected override async Task<SqlLineageLog> OpenAsync(string target) => await LineageLogs.OpenPostgresAsync(target);
}
