using MeshBus.Cli;
using MeshBus.Ledger;
using MeshBus.Ledger.Evidence;
using MeshBus.TestSupport;
using MeshBus.Trust;
using Xunit;

namespace MeshBus.Workers.Tests.Witnessing;

/// <summary>
/// <c>meshbus proof export --intent ID --peer DOMAIN</c> as an operator runs it: acme's workers on RabbitMQ (a virtual
/// host of their own), globex's on its own bus, joined by the bridge; the command asks globex over acme's broker and
/// writes a bundle holding both domains' parts that <c>meshbus proof verify --min-cosignatures 1</c> accepts.
/// </summary>
[Collection("rabbitmq-postgres")]
[Trait("Category", "Integration")]
public sealed class ProofExportOverTheBridgeTests(RabbitMqFixture rabbit) : IAsyncLifetime
{
    private const string Acme = "acme.example/prod";
    private const string Globex = "globex.example/prod";
    private readonly string _vhost = "proof-" + Guid.NewGuid().ToString("N")[..8];

    private Uri VhostUri => new UriBuilder(rabbit.AmqpUri) { Path = "/" + Uri.EscapeDataString(_vhost) }.Uri;

    public async Task InitializeAsync()
    {
        await rabbit.RabbitMqCtlAsync(["add_vhost", _vhost]);
        await rabbit.RabbitMqCtlAsync(["set_permissions", "-p", _vhost, Uri.UnescapeDataString(rabbit.AmqpUri.UserInfo.Split(':')[0]), ".*", ".*", ".*"]);
    }

    public async Task DisposeAsync() => await rabbit.RabbitMqCtlAsync(["delete_vhost", _vhost]);

    [Fact(Timeout = 180_000)]
    public async Task Proof_export_with_a_peer_asks_it_over_the_bridge_and_the_bundle_of_both_domains_verifies()
    {
        var network = new MeshBus.Federation.InProcessFederationNetwork();
        await using var acme = WitnessDomain.Create(Acme);
        await using var globex = WitnessDomain.Create(Globex);
        acme.Pin(globex);
        globex.Pin(acme);
        var user = rabbit.AmqpUri.UserInfo.Split(':');
        await acme.StartAsync(network, settings: new Dictionary<string, string?>
        {
            ["MeshBus:Transport"] = "RabbitMq",
            ["RabbitMqTransport:Host"] = rabbit.AmqpUri.Host,
            ["RabbitMqTransport:Port"] = rabbit.AmqpUri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["RabbitMqTransport:VirtualHost"] = _vhost,
            ["RabbitMqTransport:Username"] = Uri.UnescapeDataString(user[0]),
            ["RabbitMqTransport:Password"] = Uri.UnescapeDataString(user[1]),
        });
        await globex.StartAsync(network);
        var intent = Guid.NewGuid();
        await acme.Lineage.AppendAsync(new LineageEntry($"intent:{intent:D}", "TestEvent", Canonical.Json(new { type = "TestEvent", @event = new { intentId = intent.ToString("D") } })));
        await globex.Lineage.AppendAsync(new LineageEntry($"decision:{intent:D}", "TestEvent", Canonical.Json(new { type = "TestEvent", @event = new { intentId = intent.ToString("D") } })));
        await acme.CosignedAsync(globex, 1);
        var pinned = Path.Combine(acme.Directory, "pinned");
        acme.ExportTrust(pinned);
        globex.ExportTrust(pinned);

        var bundleFile = Path.Combine(acme.Directory, "evidence.json");
        var export = await RunAsync("proof", "export", "--intent", intent.ToString("D"), "--out", bundleFile, "--store", Path.Combine(acme.Directory, "lineage.db"),
            "--domain-dir", acme.KeyDirectory, "--peer", Globex, "--rabbitmq", VhostUri.ToString(), "--wait", "60");

        Assert.True(export.Code == 0, export.Err + export.Out);
        var bundle = EvidenceBundle.Parse(await File.ReadAllTextAsync(bundleFile));
        Assert.Equal(LineageNames.Origin(Globex), Assert.Single(Assert.Single(bundle.Peers).Logs.Keys));
        // Acme's own part is proven against the checkpoint the export signed: it is cosigned only once globex's witness
        // answered, so the strict check is on globex's part, which was proven against one acme's witness cosigned.
        var verify = await RunAsync("proof", "verify", bundleFile, "--trust", pinned);
        Assert.True(verify.Code == 0, verify.Out + verify.Err);
        Assert.Contains($"PASS peer {LineageNames.Origin(Globex)}: ", verify.Out, StringComparison.Ordinal);
        var report = EvidenceVerifier.Verify(bundle.Peers[0], TrustConfig.LoadDirectory(pinned), witnessesRequired: 1);
        Assert.True(report.Ok, string.Join("\n", report.Checks.Where(c => !c.Passed).Select(c => c.Description)));
    }

    [Fact(Timeout = 60_000)]
    public async Task Proof_export_asking_a_peer_that_never_answers_ends_with_one_line_and_exit_1_within_its_wait()
    {
        await using var acme = WitnessDomain.Create(Acme);
        await using var log = LineageLogs.OpenSqlite(Path.Combine(acme.Directory, "lineage.db"));
        var intent = Guid.NewGuid();
        await log.AppendAsync(new LineageEntry($"intent:{intent:D}", "TestEvent", [1]));

        var export = await RunAsync("proof", "export", "--intent", intent.ToString("D"), "--out", Path.Combine(acme.Directory, "e.json"), "--store", Path.Combine(acme.Directory, "lineage.db"),
            "--domain-dir", acme.KeyDirectory, "--peer", Globex, "--rabbitmq", VhostUri.ToString(), "--wait", "2");

        Assert.Equal(1, export.Code);
        Assert.Contains("no evidence from " + Globex + " within 2 s", export.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(acme.Directory, "e.json")));
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader("")));
        return (code, output.ToString(), error.ToString());
    }
}
