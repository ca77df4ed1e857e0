using MassTransit;
using MeshBus.Contracts;
using MeshBus.Embedded;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;

namespace MeshBus.Load;

/// <summary>
/// The embedded paths, in this process: two domains started as <c>meshbus demo</c> starts them (<see cref="EmbeddedFederation"/>:
/// each its own in-memory bus, SQLite files and all four workers, joined by the in-process link). Paths: bare
/// MassTransit request/response on the origin's bus, a same-domain intent → verified grant, and a cross-domain
/// intent → verified grant (the origin endorses, the bridge carries it, the target decides and records, the grant comes
/// back over the bridge and the origin sends it to the agent's queue; the agent verifies it with the target's keys its
/// domain pins).
/// </summary>
public sealed class EmbeddedGroup : IAsyncDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "meshbus-load-embedded-" + Guid.NewGuid().ToString("N")[..8]);
    private EmbeddedFederation? _federation;

    /// <summary>The paths, in the order they are measured.</summary>
    public List<LoadPath> Paths { get; } = [];

    /// <summary>Starts both domains and checks every path answers once.</summary>
    public static async Task<EmbeddedGroup> StartAsync()
    {
        var group = new EmbeddedGroup();
        try
        {
            await group.StartCoreAsync();
            return group;
        }
        catch
        {
            await group.DisposeAsync();
            throw;
        }
    }

    private async Task StartCoreAsync()
    {
        var id = Guid.NewGuid().ToString("N")[..6];
        var now = DateTimeOffset.UtcNow;
        var domains = new[] { $"origin{id}.example/prod", $"target{id}.example/prod" };
        var options = new List<EmbeddedMeshOptions>();
        var keyDirectories = new List<string>();
        foreach (var domain in domains)
        {
            var directory = Path.Combine(_directory, domain.Split('.')[0]);
            var keys = Path.Combine(directory, "keys");
            DomainAdministration.Initialize(keys, domain, now);
            keyDirectories.Add(keys);
            var grantKey = DomainKeys.Load(keys, KeyUsage.Grant).Signer(KeyUsage.Grant, now);
            var policy = Path.Combine(directory, "policy.json");
            await File.WriteAllTextAsync(policy, PolicyBundleSigning.Sign($$$"""
                {"format":"meshbus-policy/v1","scope":"domain","domain":"{{{domain}}}","epoch":1,
                 "rules":[{"id":"allow-deploy","effect":"allow","match":{"actions":["deploy"],"resources":["k8s://**"]},
                           "condition":"'deployers' in agent.claims.groups","obligations":{"maxLeaseSeconds":300}}]}
                """, grantKey));
            var egress = Path.Combine(directory, "egress.json");
            await File.WriteAllTextAsync(egress, PolicyBundleSigning.Sign($$$"""
                {"format":"meshbus-policy/v1","scope":"egress","domain":"{{{domain}}}","epoch":1,
                 "rules":[{"id":"deploy-to-peer","effect":"allow","match":{"actions":["deploy"],"resources":["**"]},
                           "condition":"target.domain != '{{{domain}}}'"}]}
                """, grantKey));
            var data = Path.Combine(directory, "data");
            Directory.CreateDirectory(data);
            options.Add(new EmbeddedMeshOptions(domain, data, keys, policy) { EgressPolicyBundleFile = egress });
        }

        EmbeddedFederation.PinEachOther(keyDirectories, now);
        _federation = await EmbeddedFederation.StartAsync(options);
        var origin = _federation[domains[0]];
        var credentialKey = DomainKeys.Load(keyDirectories[0], KeyUsage.Credential).Signer(KeyUsage.Credential, now);
        var local = new LoadAgent(domains[0], "load-local", credentialKey, now);
        var remote = new LoadAgent(domains[0], "load-remote", credentialKey, now) { TargetDomain = domains[1] };
        foreach (var agent in new[] { local, remote })
        {
            await origin.Bus.ConnectReceiveEndpoint(AgentQueue.Name(agent.Subject), agent.ConfigureQueue).Ready;
        }

        await origin.Bus.ConnectReceiveEndpoint("load-echo", e => e.Handler<LoadPing>(c => c.RespondAsync(new LoadPong(c.Message.Id)))).Ready;
        var trust = DomainKeys.Load(keyDirectories[0], KeyUsage.Credential).LoadTrust();
        var intents = await origin.Bus.GetSendEndpoint(new Uri("queue:authorize-intents"));
        var echo = origin.Bus.CreateRequestClient<LoadPing>(new Uri("queue:load-echo"), RequestTimeout.After(s: 30));

        // The agent's SDK check on every grant: the deciding domain's signature (through its own domain's trust), aud,
        // cnf, intent digest.
        bool Verified(IntentSubmitted intent, GrantIssued grant) => Grants.Verify(grant.Grant, new GrantVerificationOptions
        {
            Audience = intent.TargetDomain,
            AgentPublicKey = intent.Agent == local.Subject ? local.PublicKey : remote.PublicKey,
            KeyResolver = trust,
            Now = DateTimeOffset.UtcNow,
            IntentDigest = IntentSignature.Digest(intent),
        }).IsValid;

        Paths.Add(new LoadPath("embedded-bare", async () => (await echo.GetResponse<LoadPong>(new LoadPing(Guid.NewGuid()))).Message is not null, ["generator"]));
        Paths.Add(new LoadPath("embedded-grant", () => local.GrantAsync(i => intents.Send(i), Verified), ["generator"], local.PrepareAsync));
        Paths.Add(new LoadPath("bridge-grant", () => remote.GrantAsync(i => intents.Send(i), Verified), ["generator"], remote.PrepareAsync));

        // Every path must answer before anything is measured (the peers' first heartbeats must have crossed the bridge).
        foreach (var path in Paths)
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            while (!await path.Call().WaitAsync(TimeSpan.FromSeconds(60)))
            {
                bound.Token.ThrowIfCancellationRequested();
                await Task.Delay(500);
            }
        }
    }

    /// <summary>Stops both domains and removes their files.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_federation is not null)
        {
            await _federation.DisposeAsync();
        }

        try
        {
            Directory.Delete(_directory, true);
        }
        catch (IOException)
        {
        }
    }
}
