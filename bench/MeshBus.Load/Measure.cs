using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace MeshBus.Load;

/// <summary>A process whose CPU, RSS and (where it can tell) allocations are read around every measured run.</summary>
/// <param name="Name">How the tables name it (<c>generator</c>, <c>broker</c>, <c>authorize-sqlite</c>, ...).</param>
/// <param name="Pid">Its process id (read through /proc).</param>
/// <param name="AllocatedBytes">The bytes it allocated since it started, or null where it cannot tell (the broker).</param>
public sealed record Watched(string Name, int Pid, Func<Task<long?>> AllocatedBytes);

/// <summary>One thing to call: a plain request/response, a hosted one, an intent → grant.</summary>
/// <param name="Name">Path name in the results (<c>plain</c>, <c>hosted-bare</c>, <c>grant-sqlite</c>, ...).</param>
/// <param name="Call">One call; true when it got the expected answer.</param>
/// <param name="Processes">The processes that do this path's work (the generator and broker are added by the group).</param>
/// <param name="Prepare">Called before a measured run with the number of calls it may make (e.g. to sign intents ahead).</param>
public sealed record LoadPath(string Name, Func<Task<bool>> Call, IReadOnlyList<string> Processes, Func<int, Task>? Prepare = null);

/// <summary>Raw figures of one measured run.</summary>
public sealed record RunFigures(
    int Calls, int Failures, int Dropped, double Seconds, double PerSecond, double P50Ms, double P99Ms, double LoadAverage,
    IReadOnlyDictionary<string, double> CpuMsPerCall, IReadOnlyDictionary<string, double> AllocatedKiBPerCall, IReadOnlyDictionary<string, double> RssMiB);

/// <summary>Closed-loop (a fixed number in flight) and open-loop (a fixed rate) runs with /proc accounting.</summary>
public static class Measure
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Clock ticks per second of /proc/PID/stat (sysconf(_SC_CLK_TCK), 100 on Linux).</summary>
    private static readonly double TicksPerSecond = ReadTicksPerSecond();

    /// <summary>The 1-minute load average (/proc/loadavg).</summary>
    public static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    /// <summary>user + system CPU seconds of a process so far (/proc/PID/stat fields 14 and 15).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>Resident set size in MiB (/proc/PID/status VmRSS).</summary>
    public static double RssMiB(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
            }
        }

        return double.NaN;
    }

    /// <summary><paramref name="level"/> callers, each calling again as soon as its answer arrives, for <paramref name="duration"/>.</summary>
    public static Task<RunFigures> ClosedLoopAsync(LoadPath path, int level, TimeSpan duration, IReadOnlyList<Watched> watched) =>
        AccountedAsync(watched, async () =>
        {
            var latencies = new List<double>[level];
            var failures = 0;
            var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var callers = Enumerable.Range(0, level).Select(i => Task.Run(async () =>
            {
                var mine = latencies[i] = new List<double>(4096);
                while (Stopwatch.GetTimestamp() < end)
                {
                    var start = Stopwatch.GetTimestamp();
                    if (!await CallAsync(path))
                    {
                        Interlocked.Increment(ref failures);
                    }

                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            })).ToArray();
            await Task.WhenAll(callers);
            return (latencies.SelectMany(l => l).ToList(), failures, 0);
        });

    /// <summary>
    /// Calls started at a fixed <paramref name="rate"/> for <paramref name="duration"/> whatever the answers do; latency
    /// counts from when a call was due, so a stall is charged to every call it delayed. Past <paramref name="maxInFlight"/>
    /// outstanding calls a due call is dropped and counted.
    /// </summary>
    public static Task<RunFigures> OpenLoopAsync(LoadPath path, double rate, TimeSpan duration, int maxInFlight, IReadOnlyList<Watched> watched) =>
        AccountedAsync(watched, async () =>
        {
            var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
            var failures = 0;
            var dropped = 0;
            var inFlight = 0;
            var total = (int)(rate * duration.TotalSeconds);
            var started = new List<Task>(total);
            var origin = Stopwatch.GetTimestamp();
            for (var i = 0; i < total; i++)
            {
                var due = origin + (long)(i / rate * Stopwatch.Frequency);
                var wait = (due - Stopwatch.GetTimestamp()) * 1000.0 / Stopwatch.Frequency;
                if (wait > 1.5)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(wait - 1));
                }

                if (Volatile.Read(ref inFlight) >= maxInFlight)
                {
                    dropped++;
                    continue;
                }

                Interlocked.Increment(ref inFlight);
                started.Add(Task.Run(async () =>
                {
                    if (!await CallAsync(path))
                    {
                        Interlocked.Increment(ref failures);
                    }

                    latencies.Add((Stopwatch.GetTimestamp() - due) * 1000.0 / Stopwatch.Frequency);
                    Interlocked.Decrement(ref inFlight);
                }));
            }

            await Task.WhenAll(started);
            return (latencies.ToList(), failures, dropped);
        });

    private static async Task<bool> CallAsync(LoadPath path)
    {
        try
        {
            return await path.Call().WaitAsync(CallTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or MassTransit.RequestException or InvalidOperationException)
        {
            return false;
        }
    }

    private static async Task<RunFigures> AccountedAsync(IReadOnlyList<Watched> watched, Func<Task<(List<double> Latencies, int Failures, int Dropped)>> run)
    {
        var load = LoadAverage();
        var allocatedBefore = await Task.WhenAll(watched.Select(w => w.AllocatedBytes()));
        var cpuBefore = watched.Select(w => CpuSeconds(w.Pid)).ToArray();
        var clock = Stopwatch.StartNew();
        var (latencies, failures, dropped) = await run();
        clock.Stop();
        var cpuAfter = watched.Select(w => CpuSeconds(w.Pid)).ToArray();
        var allocatedAfter = await Task.WhenAll(watched.Select(w => w.AllocatedBytes()));
        var calls = Math.Max(1, latencies.Count);
        var cpu = new Dictionary<string, double>();
        var allocated = new Dictionary<string, double>();
        var rss = new Dictionary<string, double>();
        for (var i = 0; i < watched.Count; i++)
        {
            cpu[watched[i].Name] = (cpuAfter[i] - cpuBefore[i]) * 1000 / calls;
            if (allocatedBefore[i] is { } before && allocatedAfter[i] is { } after)
            {
                allocated[watched[i].Name] = (after - before) / 1024.0 / calls;
            }

            rss[watched[i].Name] = RssMiB(watched[i].Pid);
        }

        latencies.Sort();
        double Percentile(double p) => latencies.Count == 0 ? double.NaN : latencies[Math.Clamp((int)Math.Ceiling(p * latencies.Count) - 1, 0, latencies.Count - 1)];
        return new RunFigures(latencies.Count, failures, dropped, clock.Elapsed.TotalSeconds, latencies.Count / clock.Elapsed.TotalSeconds,
            Percentile(0.50), Percentile(0.99), load, cpu, allocated, rss);
    }

    private static double ReadTicksPerSecond()
    {
        const int ScClkTck = 2;
        try
        {
            var ticks = Sysconf(ScClkTck);
            return ticks > 0 ? ticks : 100;
        }
        catch (DllNotFoundException)
        {
            return 100;
        }
    }

    [DllImport("libc", EntryPoint = "sysconf")]
    private static extern long Sysconf(int name);
}
