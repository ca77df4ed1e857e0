using System.Globalization;

namespace MeshBus.Load;

/// <summary>Median, smallest and largest of one figure over the runs.</summary>
public sealed record Spread(double Median, double Min, double Max)
{
    /// <summary>The spread of <paramref name="values"/> (NaN when there are none).</summary>
    public static Spread Of(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0)
        {
            return new Spread(double.NaN, double.NaN, double.NaN);
        }

        var median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
        return new Spread(median, sorted[0], sorted[^1]);
    }
}

/// <summary>All runs of one path at one level (closed loop: callers in flight; open loop: calls per second).</summary>
public sealed record Measurement(string Group, string Path, string Mode, double Level, IReadOnlyList<RunFigures> Runs)
{
    /// <summary>Calls per second over the runs.</summary>
    public Spread PerSecond => Spread.Of(Runs.Select(r => r.PerSecond));

    /// <summary>Median latency (ms) over the runs.</summary>
    public Spread P50Ms => Spread.Of(Runs.Select(r => r.P50Ms));

    /// <summary>99th percentile latency (ms) over the runs.</summary>
    public Spread P99Ms => Spread.Of(Runs.Select(r => r.P99Ms));

    /// <summary>Failed calls in all runs (a timeout, a denial, a grant that does not verify).</summary>
    public int Failures => Runs.Sum(r => r.Failures);

    /// <summary>Open loop: due calls not started because too many were outstanding.</summary>
    public int Dropped => Runs.Sum(r => r.Dropped);

    /// <summary>CPU per call (ms) of each process.</summary>
    public IReadOnlyDictionary<string, Spread> CpuMsPerCall => Per(r => r.CpuMsPerCall);

    /// <summary>Allocated KiB per call of each process that tells.</summary>
    public IReadOnlyDictionary<string, Spread> AllocatedKiBPerCall => Per(r => r.AllocatedKiBPerCall);

    /// <summary>Resident set size (MiB) of each process at the end of the runs.</summary>
    public IReadOnlyDictionary<string, Spread> RssMiB => Per(r => r.RssMiB);

    private Dictionary<string, Spread> Per(Func<RunFigures, IReadOnlyDictionary<string, double>> figure) =>
        Runs.SelectMany(r => figure(r).Keys).Distinct().ToDictionary(k => k, k => Spread.Of(Runs.Select(r => figure(r).TryGetValue(k, out var v) ? v : double.NaN)));
}

/// <summary>
/// Runs a group's paths: per level a warm-up of every path, then the measured runs interleaved (run 1 of every path, then
/// run 2, ...) so that a change in the machine's load reaches every path alike; then the open-loop rates the same way.
/// </summary>
public static class Session
{
    /// <summary>Measures every path of a group; <paramref name="common"/> (generator, broker) are read on every path.</summary>
    public static async Task<List<Measurement>> RunGroupAsync(string group, IReadOnlyList<LoadPath> paths, IReadOnlyDictionary<string, Watched> watched,
        IReadOnlyList<Watched> common, LoadOptions options)
    {
        var results = new List<Measurement>();
        var lastRate = paths.ToDictionary(p => p.Name, _ => 0.0);
        IReadOnlyList<Watched> For(LoadPath path) => [.. common, .. path.Processes.Where(watched.ContainsKey).Select(n => watched[n])];

        foreach (var level in options.Levels)
        {
            var runs = paths.ToDictionary(p => p.Name, _ => new List<RunFigures>());
            foreach (var path in paths)
            {
                var warm = await Measure.ClosedLoopAsync(path, level, options.WarmUp, For(path));
                lastRate[path.Name] = warm.PerSecond;
                Print(group, path.Name, $"{level} in flight, warm-up", warm);
            }

            for (var run = 1; run <= options.Runs; run++)
            {
                foreach (var path in paths)
                {
                    if (path.Prepare is not null)
                    {
                        await path.Prepare((int)(lastRate[path.Name] * options.Duration.TotalSeconds * 1.5) + level + 64);
                    }

                    var figures = await Measure.ClosedLoopAsync(path, level, options.Duration, For(path));
                    lastRate[path.Name] = Math.Max(lastRate[path.Name], figures.PerSecond);
                    runs[path.Name].Add(figures);
                    Print(group, path.Name, $"{level} in flight, run {run}", figures);
                }
            }

            results.AddRange(paths.Select(p => new Measurement(group, p.Name, "closed", level, runs[p.Name])));
        }

        foreach (var rate in options.Rates)
        {
            var runs = paths.ToDictionary(p => p.Name, _ => new List<RunFigures>());
            foreach (var path in paths)
            {
                Print(group, path.Name, $"{rate}/s open loop, warm-up", await Measure.OpenLoopAsync(path, rate, options.WarmUp, options.MaxInFlight, For(path)));
            }

            for (var run = 1; run <= options.Runs; run++)
            {
                foreach (var path in paths)
                {
                    if (path.Prepare is not null)
                    {
                        await path.Prepare((int)(rate * options.Duration.TotalSeconds) + 64);
                    }

                    var figures = await Measure.OpenLoopAsync(path, rate, options.Duration, options.MaxInFlight, For(path));
                    runs[path.Name].Add(figures);
                    Print(group, path.Name, $"{rate}/s open loop, run {run}", figures);
                }
            }

            results.AddRange(paths.Select(p => new Measurement(group, p.Name, "open", rate, runs[p.Name])));
        }

        return results;
    }

    private static void Print(string group, string path, string what, RunFigures f)
    {
        var head = string.Create(CultureInfo.InvariantCulture,
            $"{group,-8} {path,-22} {what,-28} {f.Calls,6} calls {f.PerSecond,7:0}/s p50 {f.P50Ms,7:0.00} ms p99 {f.P99Ms,7:0.00} ms fail {f.Failures} drop {f.Dropped} load {f.LoadAverage:0.0}");
        var cpu = string.Join(' ', f.CpuMsPerCall.Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Key}={c.Value:0.00}")));
        Console.WriteLine(head + " cpu ms/call " + cpu);
    }
}
