using System.Diagnostics;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace MeshBus.Cli.Commands.Demo;

/// <summary>
/// <c>meshbus demo</c>: the federation on the embedded default. One process hosts <c>acme.example/prod</c> and
/// <c>partner.example/prod</c>, each with its own in-memory bus, SQLite files and four workers, joined by the in-process
/// link of the bridge and pinning each other's root, and walks the seven phases of the lifecycle: a cross-domain grant,
/// denials by either domain's policy, a policy push that re-evaluates running work, a bridge stall that lapses trust and
/// halts the work, witnessing, and evidence verified offline against the two pinned roots. Exit 0 only if every step
/// behaved as expected.
/// </summary>
public sealed class DemoCommand : CliCommand, IHasFlags
{
    private readonly DemoScenario _scenario;

    /// <summary>The demo as documented.</summary>
    public DemoCommand()
        : this(DemoScenario.Default)
    {
    }

    /// <summary>The demo with a <paramref name="scenario"/> (its tests make one step fail on purpose).</summary>
    public DemoCommand(DemoScenario scenario)
    {
        _scenario = scenario;
    }

    /// <inheritdoc />
    public override string Name => "demo";

    /// <inheritdoc />
    public override string Summary => "Run two federated domains in this process and walk the seven phases, ending with verified evidence";

    /// <inheritdoc />
    public override string Usage => """
        usage: meshbus demo [--data DIR] [--out FILE] [--json]

        Starts acme.example/prod and partner.example/prod in this process, each with Sync, Authorize, Enforce and
        Lineage on its own in-memory bus and SQLite files, joined by the in-process bridge and pinning each other's
        root (short demo intervals: heartbeats 0.5 s, stall bound 2.5 s, a checkpoint each second), and prints each step
        of six parts that cover the seven lifecycle phases:
          1. an acme agent's intent on a partner resource: acme's egress decision, the bridge, partner's decision and
             record, the grant back over the bridge verified by the agent, execution started, lease renewed;
          2. a denial by partner's policy and one by acme's egress policy, each with its rule;
          3. a policy push in partner re-evaluates the running execution (still allowed), acknowledged by acme;
          4. the link from partner to acme stalls: TrustLapsed(SyncStalled), the scoped halt reaches the agent,
             ExecutionHalted in both domains, a new intent denied SyncStale; the link recovers: TrustRestored, and
             nothing resumes by itself;
          5. each domain's checkpoints cosigned by the other domain's witness;
          6. evidence bundles of the granted and the halted intent, each holding both domains' records, verified
             offline against the two pinned roots only, and refused once one byte is changed.
          --data DIR   keep everything in DIR (new or empty): DIR/pinned/ the two roots and key sets (as meshbus trust
                       export writes them), DIR/evidence/*.json the bundles (meshbus proof verify FILE --trust DIR/pinned),
                       DIR/tampered/ the refused copies, DIR/acme and DIR/partner the keys, policies and SQLite files.
                       Without it, a temporary directory is used and removed at the end.
          --json       print one JSON document instead of the transcript: ok, the steps, and the timeline of every MeshBus
                       message seen on either bus, in order ({at, domain, event, intentId, reason})
          --out FILE   also write the transcript (or the JSON document with --json) to FILE
        Exit 0 when every step behaved as expected; 1 otherwise, naming the step that did not.
        """;

    /// <inheritdoc />
    public string[] Flags => ["json"];

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var data = args.Option("data");
        var outFile = args.Option("out");
        var json = args.Flag("json");
        args.RejectUnknown();
        var temporary = data is null;
        if (data is not null && Directory.Exists(data) && Directory.EnumerateFileSystemEntries(data).Any())
        {
            throw new CliUsageException($"--data {data} is not empty: the demo creates new domains, give it a new or empty directory");
        }

        data ??= Directory.CreateTempSubdirectory("meshbus-demo-").FullName;
        Directory.CreateDirectory(data);

        var transcript = new StringWriter();
        var steps = new List<DemoStep>();
        var timeline = new DemoTimeline();
        void Say(string line)
        {
            transcript.WriteLine(line);
            if (!json)
            {
                console.Out.WriteLine(line);
            }
        }

        void Report(DemoStep step)
        {
            steps.Add(step);
            Say($"{(step.Ok ? "ok  " : "FAIL")} {step.Name}: {step.Detail}");
        }

        var clock = Stopwatch.StartNew();
        string? failure = null;
        try
        {
            await new FederationDemo(data, _scenario, timeline, Say, Report).RunAsync(cancellationToken);
        }
        catch (DemoStepFailedException e)
        {
            failure = e.Message;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Anything else that stops the demo is a failed step too, named by where it happened.
            var last = steps.Count > 0 ? $"after step '{steps[^1].Name}'" : "before the first step";
            failure = $"{last}: {e.GetType().Name}: {e.Message}";
        }

        var passed = failure is null && steps.Count > 0;
        var elapsed = clock.Elapsed;
        Say(passed
            ? $"demo: every step behaved as expected ({steps.Count} steps, {elapsed.TotalSeconds:0.0} s)"
            : $"demo: FAILED {failure} ({elapsed.TotalSeconds:0.0} s)");
        if (!passed && json)
        {
            console.Error.WriteLine($"meshbus demo: {failure}");
        }

        var summary = JsonSerializer.Serialize(new
        {
            domains = new[] { FederationDemo.Acme, FederationDemo.Partner },
            dataDirectory = temporary ? null : data,
            ok = passed,
            failure,
            elapsedMs = (long)elapsed.TotalMilliseconds,
            steps,
            timeline = timeline.Entries,
        }, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true });
        if (json)
        {
            console.Out.WriteLine(summary);
        }

        if (outFile is not null)
        {
            await File.WriteAllTextAsync(outFile, json ? summary : transcript.ToString(), cancellationToken);
        }

        if (temporary)
        {
            RemoveTemporary(data);
        }

        return passed ? 0 : 1;
    }

    private static void RemoveTemporary(string data)
    {
        // The hosts are stopped; pooled SQLite connections may still hold the files open.
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(data, recursive: true);
        }
        catch (IOException)
        {
            // Left behind in the temporary directory; nothing depends on it.
        }
    }
}
