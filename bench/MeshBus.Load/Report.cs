using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeshBus.Load;

/// <summary>The whole run: settings, machine load, every measurement. Written as JSON and as a markdown table.</summary>
public sealed record Report(
    string Format, DateTimeOffset StartedAt, DateTimeOffset FinishedAt, string Command, int Cores,
    string LoadAverageAtStart, string LoadAverageAtEnd, LoadSettings Settings, IReadOnlyList<Measurement> Measurements)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The JSON document.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Markdown: the ratios against the plain baseline, then one table per group.</summary>
    public string ToMarkdown()
    {
        var md = new StringBuilder();
        md.AppendLine(Invariant($"Run {StartedAt:yyyy-MM-dd HH:mm:ss}–{FinishedAt:HH:mm:ss} UTC, {Cores} cores, `/proc/loadavg` at start `{LoadAverageAtStart}`, at end `{LoadAverageAtEnd}`."));
        md.AppendLine(Invariant($"Warm-up {Settings.WarmUpSeconds} s per path and level, then {Settings.Runs} runs of {Settings.DurationSeconds} s per path, interleaved; medians with [min–max] over the runs."));
        md.AppendLine();
        md.AppendLine("`" + Command + "`");
        md.AppendLine();
        AppendRatios(md);
        foreach (var group in Measurements.GroupBy(m => m.Group))
        {
            md.AppendLine();
            md.AppendLine(Invariant($"**{group.Key}** — CPU and allocation per call of each process; RSS at the end of the runs."));
            md.AppendLine();
            md.AppendLine("| path | load | calls/s | p50 ms | p99 ms | fail/drop | CPU ms per call | KiB allocated per call | RSS MiB |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---|---|---|");
            foreach (var m in group)
            {
                var load = m.Mode == "closed" ? Invariant($"{m.Level} in flight") : Invariant($"{m.Level}/s open");
                var figures = Invariant($"| {m.Path} | {load} | {F(m.PerSecond, "0")} | {F(m.P50Ms, "0.00")} | {F(m.P99Ms, "0.0")} | {m.Failures}/{m.Dropped} |");
                md.AppendLine(figures + Invariant($" {Each(m.CpuMsPerCall, "0.00")} | {Each(m.AllocatedKiBPerCall, "0")} | {Each(m.RssMiB, "0")} |"));
            }
        }

        return md.ToString();
    }

    private void AppendRatios(StringBuilder md)
    {
        Measurement? Find(string path, string mode, double level) =>
            Measurements.FirstOrDefault(m => m.Path == path && m.Mode == mode && m.Level == level);
        var rows = new List<string>();
        foreach (var (mode, level) in Measurements.Select(m => (m.Mode, m.Level)).Distinct())
        {
            var plain = Find("plain", mode, level);
            var bare = Find("embedded-bare", mode, level);
            foreach (var (path, baseline) in new[]
            {
                ("hosted-bare", plain), ("grant-sqlite", plain), ("grant-postgres", plain),
                ("embedded-grant", bare), ("bridge-grant", bare),
                ("hosted-bare@before", plain), ("grant-sqlite@before", plain), ("hosted-bare", Find("hosted-bare@before", mode, level)),
                ("grant-sqlite", Find("grant-sqlite@before", mode, level)),
            })
            {
                if (Find(path, mode, level) is { } m && baseline is not null)
                {
                    var load = mode == "closed" ? Invariant($"{level} in flight") : Invariant($"{level}/s open");
                    var throughput = m.PerSecond.Median / baseline.PerSecond.Median;
                    rows.Add(Invariant($"| {path} ÷ {baseline.Path} | {load} | {throughput:0.00}× | {m.P50Ms.Median / baseline.P50Ms.Median:0.0}× | {m.P99Ms.Median / baseline.P99Ms.Median:0.0}× |"));
                }
            }
        }

        if (rows.Count == 0)
        {
            return;
        }

        md.AppendLine("| ratio (medians) | load | throughput | p50 | p99 |");
        md.AppendLine("|---|---|---:|---:|---:|");
        foreach (var row in rows)
        {
            md.AppendLine(row);
        }
    }

    private static string F(Spread s, string format) =>
        double.IsNaN(s.Median) ? "—" : Invariant($"{s.Median.ToString(format, CultureInfo.InvariantCulture)} [{s.Min.ToString(format, CultureInfo.InvariantCulture)}–{s.Max.ToString(format, CultureInfo.InvariantCulture)}]");

    private static string Each(IReadOnlyDictionary<string, Spread> figures, string format) =>
        figures.Count == 0 ? "—" : string.Join("; ", figures.Where(f => !double.IsNaN(f.Value.Median)).Select(f => f.Key + " " + f.Value.Median.ToString(format, CultureInfo.InvariantCulture)));

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>What the run was asked to do.</summary>
public sealed record LoadSettings(IReadOnlyList<int> Levels, IReadOnlyList<double> Rates, double WarmUpSeconds, int Runs, double DurationSeconds, int MaxInFlight,
    IReadOnlyList<string> Groups, bool Postgres);
