using System.Collections.Concurrent;
using System.Text.Json;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Hosting;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Sync.Bridge;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NATS.Net;

namespace MeshBus.Load;

/// <summary>
/// <c>--cross-domain</c>: two domains in this process, each on its own in-memory bus with Authorize and the Sync bridge,
/// joined by the in-process link or (<c>--nats URL</c>) NATS JetStream. Measures, in one run: bare MassTransit
/// request/response, a same-domain intent → verified grant, and a cross-domain intent → verified grant (the origin
/// endorses, the bridge carries it, the target decides and records, the grant comes back over the bridge and the origin
/// sends it to the agent's queue; the agent verifies it with the target's keys its domain pins).
/// </summary>
public static class CrossDomainLoad
{
    /// <summary>A measured run (name, count, concurrency, limit, one call) → result; Program's runner.</summary>
    public delegate Task<Result> Runner(string name, int count, int concurrency, TimeSpan limit, Func<Task<bool>> call);

    private sealed record Keys(string Domain, RootKey Root, Ed25519Signer Grant, Ed25519Signer Credential, Ed25519Signer Envelope, KeySet KeySet)
    {
        public static Keys Create(string domain)
        {
            var now = DateTimeOffset.UtcNow;
            var grant = Ed25519Signer.Generate(KeyUsage.Grant);
            var credential = Ed25519Signer.Generate(KeyUsage.Credential);
            var envelope = Ed25519Signer.Generate(KeyUsage.Envelope);
            var keySet = new KeySet(domain, 1, now.AddDays(-1), now.AddDays(1),
                [.. new[] { grant, credential, envelope }.Select(s => new KeySetEntry(s.KeyId, s.Usage, Base64Url.Encode(s.PublicKey), now.AddDays(-1), now.AddDays(1)))], []);
            return new Keys(domain, RootKey.Generate(domain), grant, credential, envelope, keySet);
        }

        public TrustConfig TrustWith(Keys peer)
        {
            var trust = new TrustConfig([Root.VerifierKey, peer.Root.VerifierKey], KeySet);
            var accepted = trust.AcceptKeySet(peer.KeySet.Sign(peer.Root), DateTimeOffset.UtcNow);
            return accepted.IsValid ? trust : throw new InvalidOperationException(accepted.Detail);
        }
    }

    /// <summary>Runs the three measurements; returns the exit code.</summary>
    public static async Task<int> RunAsync(LoadArgs opts, Runner run)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var o = Keys.Create($"origin{id}.example/prod");
        var t = Keys.Create($"target{id}.example/prod");
        var trustO = o.TrustWith(t);
        var trustT = t.TrustWith(o);
        var network = new InProcessFederationNetwork();
        var agentSubject = o.Domain + "/agents/load";
        var answers = new ConcurrentDictionary<Guid, TaskCompletionSource<object>>();

        using var origin = Build(o, t, trustO, network, opts.Nats, h =>
        {
            h.AddSingleton(answers);
        }, x =>
        {
            x.AddConsumer<AgentAnswerConsumer>().Endpoint(e =>
            {
                e.Name = AgentQueue.Name(agentSubject);
                e.ConfigureConsumeTopology = false;
            });
            x.AddConsumer<EchoConsumer>().Endpoint(e =>
            {
                e.Name = "echo";
                e.ConfigureConsumeTopology = false;
            });
        });
        using var target = Build(t, o, trustT, network, opts.Nats, _ => { }, _ => { });
        await origin.StartAsync();
        await target.StartAsync();
        using var heartbeats = new CancellationTokenSource();
        try
        {
            Load(origin, o, PolicyScope.Domain, DomainBundle(o));
            Load(origin, o, PolicyScope.Egress, EgressBundle(o, t));
            Load(target, t, PolicyScope.Domain, DomainBundle(t));
            var busO = origin.Services.GetRequiredService<IBus>();
            var busT = target.Services.GetRequiredService<IBus>();
            var heartbeatLoop = Task.Run(async () =>
            {
                // Each domain announces itself on its own bus, as its Sync does; the bridge carries it to the peer.
                long beat = 0;
                while (!heartbeats.IsCancellationRequested)
                {
                    beat++;
                    await busO.Publish(new GovernanceSigner(() => o.Envelope).Sign(new DomainHeartbeat(o.Domain, beat, DateTimeOffset.UtcNow, 1, 1, 1, "")));
                    await busT.Publish(new GovernanceSigner(() => t.Envelope).Sign(new DomainHeartbeat(t.Domain, beat, DateTimeOffset.UtcNow, 1, 1, 0, "")));

                    await Task.Delay(2000, heartbeats.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                }
            });
            await Task.Delay(1500);

            var agentPrivate = Ed25519Keys.NewPrivateKey();
            var agentPublic = Ed25519Keys.PublicKeyOf(agentPrivate);
            var now = DateTimeOffset.UtcNow;
            var credential = Credentials.Issue(new CredentialClaims(o.Domain, agentSubject, "c-load", Base64Url.Encode(agentPublic),
                new AgentAttributes("sha256:0123", "load", "bench", ["deployers"]), now.AddMinutes(-1), now.AddMinutes(-1), now.AddHours(1)), o.Credential);
            var parameters = JsonDocument.Parse("""{"replicas":3}""").RootElement.Clone();
            IntentSubmitted Intent(string targetDomain) => IntentSignature.Sign(new IntentSubmitted(Guid.NewGuid(), o.Domain, agentSubject, targetDomain, "deploy",
                "k8s://cluster-a/ns/web", parameters, 600, Guid.NewGuid().ToString("N")[..12], DateTimeOffset.UtcNow, credential, ""), agentPrivate);
            var intents = await busO.GetSendEndpoint(new Uri("queue:authorize-intents"));
            var echo = busO.CreateRequestClient<LoadPing>(new Uri("queue:echo"), RequestTimeout.After(s: 30));
            var limit = TimeSpan.FromSeconds(opts.Seconds);

            async Task<bool> GrantAsync(IntentSubmitted intent)
            {
                var tcs = answers.GetOrAdd(intent.IntentId, _ => new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously));
                await intents.Send(intent);
                var answer = await tcs.Task.WaitAsync(TimeSpan.FromSeconds(30));
                answers.TryRemove(intent.IntentId, out _);
                // The agent's SDK check: the deciding domain's signature (through its own domain's trust), aud, cnf, digest.
                return answer is GrantIssued g && Grants.Verify(g.Grant, new GrantVerificationOptions
                {
                    Audience = intent.TargetDomain,
                    AgentPublicKey = agentPublic,
                    KeyResolver = trustO,
                    Now = DateTimeOffset.UtcNow,
                    IntentDigest = IntentSignature.Digest(intent),
                }).IsValid;
            }

            await run("warm-up", Math.Min(200, opts.Count), opts.Concurrency, limit, async () => { await echo.GetResponse<LoadPong>(new LoadPing(Guid.NewGuid())); return true; });
            await run("warm-up", Math.Min(200, opts.Count), opts.Concurrency, limit, () => GrantAsync(Intent(o.Domain)));
            await run("warm-up", Math.Min(200, opts.Count), opts.Concurrency, limit, () => GrantAsync(Intent(t.Domain)));

            var bare = await run("bare MassTransit request/response", opts.Count, opts.Concurrency, limit,
                async () => { await echo.GetResponse<LoadPong>(new LoadPing(Guid.NewGuid())); return true; });
            var local = await run("same-domain intent -> verified grant", opts.Count, opts.Concurrency, limit, () => GrantAsync(Intent(o.Domain)));
            var cross = await run($"cross-domain ({(opts.Nats is null ? "in-process" : "JetStream")}) -> verified grant", opts.Count, opts.Concurrency, limit,
                () => GrantAsync(Intent(t.Domain)));
            Console.WriteLine();
            Console.WriteLine(FormattableString.Invariant(
                $"hops per cross-domain grant: 5 bus deliveries (intent, endorsement to the relay, endorsement to the target's Authorize, grant to the relay, grant to the agent's queue) + 2 link messages; same-domain: 2 bus deliveries"));
            Console.WriteLine(FormattableString.Invariant(
                $"ratio cross/same-domain: p50 {cross.P50 / local.P50:0.0}x, p99 {cross.P99 / local.P99:0.0}x; cross/bare: p50 {cross.P50 / bare.P50:0.0}x"));
            heartbeats.Cancel();
            await heartbeatLoop;
            return cross.Failures == 0 && local.Failures == 0 ? 0 : 1;
        }
        finally
        {
            heartbeats.Cancel();
            await target.StopAsync();
            await origin.StopAsync();
            if (opts.Nats is not null)
            {
                await using var admin = new NatsClient(opts.Nats);
                var js = admin.CreateJetStreamContext();
                foreach (var d in new[] { o.Domain, t.Domain })
                {
                    try
                    {
                        await js.DeleteStreamAsync(Subjects.Stream(d));
                    }
                    catch (NATS.Client.JetStream.NatsJSApiException)
                    {
                        // never created
                    }
                }
            }
        }
    }

    private static IHost Build(Keys self, Keys peer, TrustConfig trust, InProcessFederationNetwork network, string? nats,
        Action<IServiceCollection> services, Action<IBusRegistrationConfigurator> bus)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "meshbus-load-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["MeshBus:Domain"] = self.Domain,
            ["MeshBus:DataDirectory"] = dataDir,
            ["Federation:Link"] = nats is null ? "InProcess" : "Nats",
            ["Federation:Nats:Url"] = nats,
            ["Logging:LogLevel:Default"] = "Warning",
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddSingleton(new AuthorizeKeys(trust, self.Grant, self.KeySet.Sequence));
        builder.Services.AddSingleton(new BridgeKeys(self.Envelope, trust, [peer.Domain]));
        if (nats is null)
        {
            builder.Services.AddSingleton(network.LinkFor(self.Domain));
        }

        services(builder.Services);
        builder.Services.AddMeshBus(builder.Configuration, [new AuthorizeWorker(), new FederationBridgeWorker()], bus);
        return builder.Build();
    }

    private static void Load(IHost host, Keys keys, PolicyScope scope, string unsigned) =>
        host.Services.GetRequiredService<IPolicyBundles>().Load(PolicyBundleSigning.Sign(unsigned, keys.Grant), scope);

    private static string DomainBundle(Keys k) => $$$"""
        {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{k.Domain}}}","epoch":1,
         "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://**"]},
                   "condition":"'deployers' in agent.claims.groups","obligations":{"maxLeaseSeconds":300}}]}
        """;

    private static string EgressBundle(Keys o, Keys t) => $$$"""
        {"format":"meshbus-policy/v1","scope":"egress","domain":"{{{o.Domain}}}","epoch":1,
         "rules":[{"id":"deploy-to-target","effect":"allow","match":{"actions":["deploy"],"resources":["**"]},
                   "condition":"target.domain == '{{{t.Domain}}}'"}]}
        """;
}
