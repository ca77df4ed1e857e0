using System.Globalization;
using MassTransit;
using MeshBus.Hosting;
using MeshBus.Load;
using Microsoft.Extensions.Hosting;

// End-to-end load (issue 21). One command runs every path against one broker and writes JSON and a markdown table;
// bench/run-load.sh creates the broker's virtual host and deletes it after. Child mode: hosted-responder.
if (args is ["hosted-responder"])
{
    return await HostedResponderAsync();
}

var options = LoadOptions.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("""
        usage: meshbus-load [--amqp amqp://guest:guest@127.0.0.1:5672/VHOST] [--postgres 'Host=127.0.0.1;Port=5432;Username=postgres']
                            [--broker-pid PID] [--groups rabbitmq,embedded] [--paths plain,grant-sqlite,...] [--levels 1,8,32,128] [--rates 200]
                            [--warmup 3] [--runs 3] [--seconds 4] [--max-in-flight 1000]
                            [--before OTHER-TREE] [--json FILE] [--markdown FILE]
        The rabbitmq group needs --amqp (loopback only; give it a virtual host of its own: everything it declares is left
        there). Without --postgres the PostgreSQL path is left out.
        """);
    return 2;
}

var startedAt = DateTimeOffset.UtcNow;
var loadAtStart = File.ReadAllText("/proc/loadavg").Trim();
var measurements = new List<Measurement>();
var generator = new Watched("generator", Environment.ProcessId, () => Task.FromResult<long?>(GC.GetTotalAllocatedBytes()));
var common = new List<Watched> { generator };
if (options.BrokerPid is { } brokerPid)
{
    common.Add(new Watched("broker", brokerPid, () => Task.FromResult<long?>(null)));
}

if (options.Groups.Contains("rabbitmq"))
{
    await using var rabbit = await RabbitGroup.StartAsync(options);
    measurements.AddRange(await Session.RunGroupAsync("rabbitmq", options.Select(rabbit.Paths), rabbit.Watched, common, options));
}

if (options.Groups.Contains("embedded"))
{
    await using var embedded = await EmbeddedGroup.StartAsync();
    measurements.AddRange(await Session.RunGroupAsync("embedded", options.Select(embedded.Paths), new Dictionary<string, Watched>(), [generator], options));
}

var report = new Report("meshbus-load/v1", startedAt, DateTimeOffset.UtcNow, "meshbus-load " + string.Join(' ', args), Environment.ProcessorCount,
    loadAtStart, File.ReadAllText("/proc/loadavg").Trim(),
    new LoadSettings(options.Levels, options.Rates, options.WarmUp.TotalSeconds, options.Runs, options.Duration.TotalSeconds, options.MaxInFlight,
        options.Groups, options.Postgres is not null),
    measurements);
var markdown = report.ToMarkdown();
Console.WriteLine();
Console.WriteLine(markdown);
if (options.JsonFile is not null)
{
    await File.WriteAllTextAsync(options.JsonFile, report.ToJson());
}

if (options.MarkdownFile is not null)
{
    await File.WriteAllTextAsync(options.MarkdownFile, markdown);
}

return measurements.All(m => m.Failures == 0) ? 0 : 1;

// The hosted bare path's responder: MassTransit configured by MeshBus's hosting exactly as a worker gets it (AddMeshBus:
// endpoint filters, retry, outbox, telemetry, scheduler), one consumer answering LoadPing. Settings from the environment.
static async Task<int> HostedResponderAsync()
{
    var builder = Host.CreateApplicationBuilder();
    builder.Services.AddMeshBus(builder.Configuration, [], x => x.AddConsumer<EchoConsumer>().Endpoint(e =>
    {
        e.Name = Environment.GetEnvironmentVariable("LOAD_QUEUE") ?? "hosted-echo";
        e.ConfigureConsumeTopology = false;
    }));
    using var host = builder.Build();
    await host.StartAsync();
    Console.WriteLine("ready");
    while (await Console.In.ReadLineAsync() is { } line && line != "stop")
    {
        if (line == "stats")
        {
            Console.WriteLine("stats " + GC.GetTotalAllocatedBytes().ToString(CultureInfo.InvariantCulture));
        }
    }

    await host.StopAsync();
    return 0;
}

namespace MeshBus.Load
{
    /// <summary>Baseline request (the plain responder declares the same type name).</summary>
    public sealed record LoadPing(Guid Id);

    /// <summary>Baseline response.</summary>
    public sealed record LoadPong(Guid Id);

    /// <summary>The bare request/response responder.</summary>
    public sealed class EchoConsumer : IConsumer<LoadPing>
    {
        public Task Consume(ConsumeContext<LoadPing> context) => context.RespondAsync(new LoadPong(context.Message.Id));
    }

    /// <summary>Command line.</summary>
    public sealed record LoadOptions
    {
        public Uri? Amqp { get; init; }

        public string? Postgres { get; init; }

        public int? BrokerPid { get; init; }

        public IReadOnlyList<string> Groups { get; init; } = ["rabbitmq", "embedded"];

        /// <summary>Only these paths are measured (all of the selected groups when empty); all still start.</summary>
        public IReadOnlyList<string> Paths { get; init; } = [];

        public IReadOnlyList<int> Levels { get; init; } = [1, 8, 32, 128];

        public IReadOnlyList<double> Rates { get; init; } = [200];

        public TimeSpan WarmUp { get; init; } = TimeSpan.FromSeconds(3);

        public int Runs { get; init; } = 3;

        public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(4);

        public int MaxInFlight { get; init; } = 1000;

        /// <summary>
        /// Another tree of this repository (built in the same configuration) whose hosted responder and SQLite Authorize
        /// stack are measured beside this one's, as <c>hosted-bare@before</c> and <c>grant-sqlite@before</c>.
        /// </summary>
        public string? Before { get; init; }

        public string? JsonFile { get; init; }

        public string? MarkdownFile { get; init; }

        /// <summary>The paths of a group to measure.</summary>
        public IReadOnlyList<LoadPath> Select(IReadOnlyList<LoadPath> paths) => Paths.Count == 0 ? paths : [.. paths.Where(p => Paths.Contains(p.Name))];

        /// <summary>The built executable of a project of this repository, in the configuration this tool was built in.</summary>
        public string Executable(string project, string dll, string? root = null)
        {
            // bin/<Configuration>/net10.0 of this assembly → the same of the other project (in this tree or in root).
            var bin = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var repo = root ?? bin.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
            return Path.Combine(repo, project, "bin", bin.Parent!.Name, bin.Name, dll);
        }

        public static LoadOptions? Parse(string[] args)
        {
            var o = new LoadOptions();
            for (var i = 0; i < args.Length; i++)
            {
                var value = i + 1 < args.Length ? args[i + 1] : null;
                if (value is null)
                {
                    return null;
                }

                i++;
                switch (args[i - 1])
                {
                    case "--amqp" when Uri.TryCreate(value, UriKind.Absolute, out var amqp) && amqp is { Scheme: "amqp", Host: "127.0.0.1" or "localhost" }:
                        o = o with { Amqp = amqp };
                        break;
                    case "--postgres" when value.Contains("127.0.0.1", StringComparison.Ordinal) || value.Contains("localhost", StringComparison.Ordinal):
                        o = o with { Postgres = value };
                        break;
                    case "--broker-pid" when int.TryParse(value, out var pid) && File.Exists($"/proc/{pid}/stat"):
                        o = o with { BrokerPid = pid };
                        break;
                    case "--groups" when value.Split(',') is var groups && groups.All(g => g is "rabbitmq" or "embedded"):
                        o = o with { Groups = groups };
                        break;
                    case "--paths" when value.Length > 0:
                        o = o with { Paths = value.Split(',') };
                        break;
                    case "--levels" when Ints(value) is { } levels:
                        o = o with { Levels = levels };
                        break;
                    case "--rates" when value.Length == 0:
                        o = o with { Rates = [] };
                        break;
                    case "--rates" when Ints(value) is { } rates:
                        o = o with { Rates = [.. rates.Select(r => (double)r)] };
                        break;
                    case "--warmup" when double.TryParse(value, CultureInfo.InvariantCulture, out var w) && w > 0:
                        o = o with { WarmUp = TimeSpan.FromSeconds(w) };
                        break;
                    case "--runs" when int.TryParse(value, out var r) && r >= 1:
                        o = o with { Runs = r };
                        break;
                    case "--seconds" when double.TryParse(value, CultureInfo.InvariantCulture, out var s) && s > 0:
                        o = o with { Duration = TimeSpan.FromSeconds(s) };
                        break;
                    case "--max-in-flight" when int.TryParse(value, out var m) && m > 0:
                        o = o with { MaxInFlight = m };
                        break;
                    case "--before" when Directory.Exists(value):
                        o = o with { Before = Path.GetFullPath(value) };
                        break;
                    case "--json":
                        o = o with { JsonFile = value };
                        break;
                    case "--markdown":
                        o = o with { MarkdownFile = value };
                        break;
                    default:
                        return null;
                }
            }

            return o.Groups.Contains("rabbitmq") && o.Amqp is null ? null : o;
        }

        private static int[]? Ints(string value)
        {
            var parts = value.Split(',');
            var numbers = parts.Select(p => int.TryParse(p, out var n) && n > 0 ? n : 0).ToArray();
            return numbers.All(n => n > 0) ? numbers : null;
        }
    }
}
