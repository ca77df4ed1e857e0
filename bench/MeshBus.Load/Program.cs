using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Load;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Decisions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// End-to-end load: intent → grant through the Authorize worker on RabbitMQ (one domain), next to bare MassTransit
// request/response on the same broker in the same run. Loopback only; bounded by --count and --seconds.
var opts = LoadArgs.Parse(args);
if (opts is null)
{
    Console.Error.WriteLine("usage: meshbus-load [--count N] [--concurrency C] [--seconds S] [--host 127.0.0.1] [--postgres CONNECTION]");
    Console.Error.WriteLine("       meshbus-load --cross-domain [--nats nats://127.0.0.1:4222] [--count N] [--concurrency C] [--seconds S]");
    return 2;
}

if (opts.CrossDomain)
{
    return await CrossDomainLoad.RunAsync(opts, RunAsync);
}

if (opts.Host is not ("127.0.0.1" or "localhost" or "::1"))
{
    Console.Error.WriteLine("meshbus-load: loopback brokers only (--host 127.0.0.1)");
    return 2;
}

var run = Guid.NewGuid().ToString("N")[..8];
var domain = $"load{run}.example/prod";
var prefix = $"load-{run}-";
var dataDir = Path.Combine(Path.GetTempPath(), "meshbus-load-" + run);
Directory.CreateDirectory(dataDir);

// The domain's keys (in memory): a root, a signed key set, the grant and credential keys.
var now = DateTimeOffset.UtcNow;
var root = RootKey.Generate(domain);
var grantPrivate = Ed25519Keys.NewPrivateKey();
var grantKey = new Ed25519Signer(KeyIds.For(KeyUsage.Grant, Ed25519Keys.PublicKeyOf(grantPrivate)), KeyUsage.Grant, grantPrivate);
var credentialKey = Ed25519Signer.Generate(KeyUsage.Credential);
var envelopeKey = Ed25519Signer.Generate(KeyUsage.Envelope);
var keySet = new KeySet(domain, 1, now.AddDays(-1), now.AddDays(1),
    [Entry(grantKey), Entry(credentialKey), Entry(envelopeKey)], []);
var trust = new TrustConfig([root.VerifierKey], keySet);

var settings = new Dictionary<string, string?>
{
    ["MeshBus:Domain"] = domain,
    ["MeshBus:Transport"] = "RabbitMq",
    ["MeshBus:DataDirectory"] = dataDir,
    ["RabbitMqTransport:Host"] = opts.Host,
    ["RabbitMqTransport:Username"] = "guest",
    ["RabbitMqTransport:Password"] = "guest",
    ["RabbitMqTransport:PrefetchCount"] = "128",
    ["Authorize:QueuePrefix"] = prefix,
    ["Storage:Provider"] = opts.Postgres is null ? "Sqlite" : "Postgres",
    ["Storage:ConnectionString"] = opts.Postgres,
    ["Logging:LogLevel:Default"] = "Warning",
};
var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
var builder = Host.CreateApplicationBuilder();
builder.Configuration.AddConfiguration(configuration);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
var agentSubject = domain + "/agents/load";
var answers = new ConcurrentDictionary<Guid, TaskCompletionSource<object>>();
builder.Services.AddSingleton(answers);
builder.Services.AddSingleton(new AuthorizeKeys(trust, grantKey, keySet.Sequence) { OwnRoot = root.VerifierKey });
builder.Services.AddMeshBus(builder.Configuration, [new AuthorizeWorker()], x =>
{
    x.AddConsumer<AgentAnswerConsumer>().Endpoint(e =>
    {
        e.Name = AgentQueue.Name(agentSubject);
        e.ConfigureConsumeTopology = false;
    });
    x.AddConsumer<EchoConsumer>().Endpoint(e =>
    {
        e.Name = prefix + "echo";
        e.ConfigureConsumeTopology = false;
    });
});
using var host = builder.Build();
await host.StartAsync();
try
{
    var bus = host.Services.GetRequiredService<IBus>();
    var policy = host.Services.GetRequiredService<IPolicyBundles>();
    var bundle = PolicyBundleSigning.Sign($$$"""
        {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{domain}}}","epoch":1,
         "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://**"]},
                   "condition":"'deployers' in agent.claims.groups","obligations":{"maxLeaseSeconds":300}}]}
        """, grantKey.KeyId, grantPrivate);
    policy.Load(bundle, PolicyScope.Domain);
    var governance = await bus.GetSendEndpoint(new Uri($"queue:{prefix}authorize-governance"));
    long beat = 0;
    using var heartbeats = new CancellationTokenSource();
    var heartbeatLoop = Task.Run(async () =>
    {
        while (!heartbeats.IsCancellationRequested)
        {
            // Signed as the domain's Sync signs them (the envelope key): Authorize refuses anything else.
            await governance.Send(new GovernanceSigner(() => envelopeKey).Sign(new DomainHeartbeat(domain, ++beat, DateTimeOffset.UtcNow, keySet.Sequence, 1, 0, "")));
            await Task.Delay(2000, heartbeats.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    });
    await Task.Delay(1000);

    // The agent's side: a key, a credential, intents signed ahead of time (agent CPU is not the mesh's).
    var agentPrivate = Ed25519Keys.NewPrivateKey();
    var credential = Credentials.Issue(new CredentialClaims(domain, agentSubject, "c-load", Base64Url.Encode(Ed25519Keys.PublicKeyOf(agentPrivate)),
        new AgentAttributes("sha256:0123", "load", "bench", ["deployers"]), now.AddMinutes(-1), now.AddMinutes(-1), now.AddHours(1)), credentialKey);
    var parameters = JsonDocument.Parse("""{"replicas":3}""").RootElement.Clone();
    IntentSubmitted MakeIntent() => IntentSignature.Sign(new IntentSubmitted(Guid.NewGuid(), domain, agentSubject, domain, "deploy", "k8s://cluster-a/ns/web",
        parameters, 600, Guid.NewGuid().ToString("N")[..12], DateTimeOffset.UtcNow, credential, ""), agentPrivate);

    var intents = await bus.GetSendEndpoint(new Uri($"queue:{prefix}authorize-intents"));
    var echo = bus.CreateRequestClient<LoadPing>(new Uri($"queue:{prefix}echo"), RequestTimeout.After(s: 30));

    // Warm-up of both paths (JIT, connections, SQLite), not measured.
    await RunAsync("warm-up", Math.Min(200, opts.Count), opts.Concurrency, TimeSpan.FromSeconds(opts.Seconds), async () =>
    {
        await echo.GetResponse<LoadPong>(new LoadPing(Guid.NewGuid()));
        return true;
    });
    await RunAsync("warm-up", Math.Min(200, opts.Count), opts.Concurrency, TimeSpan.FromSeconds(opts.Seconds), () => GrantAsync(MakeIntent()));

    var baseline = await RunAsync("bare MassTransit request/response", opts.Count, opts.Concurrency, TimeSpan.FromSeconds(opts.Seconds), async () =>
    {
        await echo.GetResponse<LoadPong>(new LoadPing(Guid.NewGuid()));
        return true;
    });
    var pending = Enumerable.Range(0, opts.Count).Select(_ => MakeIntent()).ToArray();
    var next = -1;
    var mesh = await RunAsync("intent -> grant (Authorize)", opts.Count, opts.Concurrency, TimeSpan.FromSeconds(opts.Seconds),
        () => GrantAsync(pending[Interlocked.Increment(ref next)]));

    Console.WriteLine();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"ratio (Authorize / bare): throughput {mesh.PerSecond / baseline.PerSecond:0.00}x, p50 {mesh.P50 / baseline.P50:0.0}x, p99 {mesh.P99 / baseline.P99:0.0}x"));
    heartbeats.Cancel();
    await heartbeatLoop;
    return mesh.Failures == 0 ? 0 : 1;

    async Task<bool> GrantAsync(IntentSubmitted intent)
    {
        var tcs = answers.GetOrAdd(intent.IntentId, _ => new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously));
        await intents.Send(intent);
        var answer = await tcs.Task.WaitAsync(TimeSpan.FromSeconds(30));
        answers.TryRemove(intent.IntentId, out _);
        return answer is GrantIssued;
    }
}
finally
{
    await host.StopAsync();
    try
    {
        Directory.Delete(dataDir, true);
    }
    catch (IOException)
    {
    }
}

static KeySetEntry Entry(ISigner s) =>
    new(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

static async Task<Result> RunAsync(string name, int count, int concurrency, TimeSpan limit, Func<Task<bool>> call)
{
    var latencies = new ConcurrentBag<double>();
    var failures = 0;
    var issued = 0;
    using var stop = new CancellationTokenSource(limit);
    var self = Process.GetCurrentProcess();
    var cpuBefore = self.TotalProcessorTime;
    var allocatedBefore = GC.GetTotalAllocatedBytes();
    var clock = Stopwatch.StartNew();
    var workers = Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested && Interlocked.Increment(ref issued) <= count)
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                if (!await call())
                {
                    Interlocked.Increment(ref failures);
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref failures);
            }

            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    })).ToArray();
    await Task.WhenAll(workers);
    clock.Stop();
    self.Refresh();
    var cpuPerCall = (self.TotalProcessorTime - cpuBefore).TotalMilliseconds / Math.Max(1, latencies.Count);
    var allocatedPerCall = (GC.GetTotalAllocatedBytes() - allocatedBefore) / 1024.0 / Math.Max(1, latencies.Count);
    var sorted = latencies.Order().ToArray();
    double Pct(double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    var result = new Result(sorted.Length / clock.Elapsed.TotalSeconds, Pct(0.50), Pct(0.99), failures);
    if (name != "warm-up")
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-36} {sorted.Length,6} done in {clock.Elapsed.TotalSeconds,6:0.00} s  {result.PerSecond,8:0} /s  p50 {result.P50,7:0.00} ms  p99 {result.P99,7:0.00} ms  failures {failures}  " +
            $"(this process: {cpuPerCall:0.00} ms CPU, {allocatedPerCall:0} KiB allocated per call)"));
    }

    return result;
}

namespace MeshBus.Load
{
    /// <summary>Baseline request.</summary>
    public sealed record LoadPing(Guid Id);

    /// <summary>Baseline response.</summary>
    public sealed record LoadPong(Guid Id);

    /// <summary>One measured run.</summary>
    public sealed record Result(double PerSecond, double P50, double P99, int Failures);

    /// <summary>Command line.</summary>
    public sealed record LoadArgs(int Count, int Concurrency, int Seconds, string Host, string? Postgres)
    {
        /// <summary>Two domains joined by the bridge (<c>--cross-domain</c>).</summary>
        public bool CrossDomain { get; init; }

        /// <summary>NATS for the cross-domain run (<c>--nats</c>); the in-process link without it.</summary>
        public string? Nats { get; init; }

        public static LoadArgs? Parse(string[] args)
        {
            var o = new LoadArgs(2000, 32, 120, "127.0.0.1", null);
            for (var i = 0; i < args.Length; i++)
            {
                var value = i + 1 < args.Length ? args[i + 1] : null;
                switch (args[i])
                {
                    case "--count" when int.TryParse(value, out var n) && n > 0: o = o with { Count = n }; i++; break;
                    case "--concurrency" when int.TryParse(value, out var c) && c > 0: o = o with { Concurrency = c }; i++; break;
                    case "--seconds" when int.TryParse(value, out var s) && s > 0: o = o with { Seconds = s }; i++; break;
                    case "--host" when value is not null: o = o with { Host = value }; i++; break;
                    case "--postgres" when value is not null: o = o with { Postgres = value }; i++; break;
                    case "--cross-domain": o = o with { CrossDomain = true }; break;
                    case "--nats" when value is not null && value.StartsWith("nats://127.0.0.1:", StringComparison.Ordinal): o = o with { Nats = value }; i++; break;
                    default: return null;
                }
            }

            return o;
        }
    }

    /// <summary>The bare request/response baseline's responder.</summary>
    public sealed class EchoConsumer : IConsumer<LoadPing>
    {
        public Task Consume(ConsumeContext<LoadPing> context) => context.RespondAsync(new LoadPong(context.Message.Id));
    }

    /// <summary>The agent's queue: completes the waiting intent.</summary>
    public sealed class AgentAnswerConsumer(ConcurrentDictionary<Guid, TaskCompletionSource<object>> answers) : IConsumer<GrantIssued>, IConsumer<GrantDenied>
    {
        public Task Consume(ConsumeContext<GrantIssued> context) => Complete(context.Message.IntentId, context.Message);

        public Task Consume(ConsumeContext<GrantDenied> context)
        {
            Console.Error.WriteLine($"denied {context.Message.IntentId}: {context.Message.Reason} {context.Message.Detail}");
            return Complete(context.Message.IntentId, context.Message);
        }

        private Task Complete(Guid id, object answer)
        {
            if (answers.TryGetValue(id, out var tcs))
            {
                tcs.TrySetResult(answer);
            }

            return Task.CompletedTask;
        }
    }
}
