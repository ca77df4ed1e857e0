using System.Text;
using System.Text.Json;
using MeshBus.Cli;
using MeshBus.Cli.Commands.Demo;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>
/// The README's main command, run as a user runs it: two federated domains on the embedded default walk the seven
/// phases; its JSON timeline (what the observers on both buses saw) is checked event by event, and the evidence it
/// leaves in <c>--data</c> verifies against the pinned roots only.
/// </summary>
public sealed class DemoCommandTests : IDisposable
{
    private const string Acme = "acme.example/prod";
    private const string Partner = "partner.example/prod";
    private readonly string _data = Path.Combine(Path.GetTempPath(), "meshbus-demo-test-" + Guid.NewGuid().ToString("N")[..8]);

    private sealed record Entry(int Index, string Domain, string Event, string? IntentId, string? Reason);

    private static async Task<(int Code, string Out, string Err)> RunAsync(CliCommand? command, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var console = new CliConsole(output, error, TextReader.Null);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(150));
        var code = command is null
            ? await CommandLineApp.RunAsync(args, console, bound.Token)
            : await command.RunAsync(CliArgs.Parse(args, "json"), console, bound.Token);
        return (code, output.ToString(), error.ToString());
    }

    private static List<Entry> Timeline(JsonDocument summary) =>
        [.. summary.RootElement.GetProperty("timeline").EnumerateArray().Select((e, i) => new Entry(i,
            e.GetProperty("domain").GetString()!, e.GetProperty("event").GetString()!,
            e.GetProperty("intentId").GetString(), e.GetProperty("reason").GetString()))];

    /// <summary>The index of the first entry that matches, after <paramref name="after"/>; fails naming what was missing.</summary>
    private static int First(List<Entry> timeline, string what, Func<Entry, bool> match, int after = -1)
    {
        var found = timeline.FirstOrDefault(e => e.Index > after && match(e));
        Assert.True(found is not null, $"the timeline has no {what} after entry {after}");
        return found.Index;
    }

    [Fact(Timeout = 180_000)]
    public async Task The_demo_walks_the_seven_phases_across_two_domains_and_its_timeline_shows_them_in_causal_order()
    {
        var (code, output, error) = await RunAsync(null, "demo", "--data", _data, "--json");

        Assert.True(code == 0, output + error);
        using var summary = JsonDocument.Parse(output); // only JSON on standard output
        Assert.True(summary.RootElement.GetProperty("ok").GetBoolean());
        var steps = summary.RootElement.GetProperty("steps").EnumerateArray()
            .ToDictionary(s => s.GetProperty("name").GetString()!, s => s.GetProperty("detail").GetString()!);
        Assert.Contains("'freeze-payments'", steps["denied by partner's policy"], StringComparison.Ordinal);
        Assert.Contains("'no-delete-abroad'", steps["denied by acme's egress policy"], StringComparison.Ordinal);
        Assert.Contains("policy epoch 2", steps["re-evaluation still allows the running execution"], StringComparison.Ordinal);
        var t = Timeline(summary);
        Assert.All(t, e => Assert.Contains(e.Domain, new[] { Acme, Partner }));

        // Phase 1: acme's agent → acme's egress decision → the bridge → partner decides and grants → back to acme → started, renewed.
        var submitted = First(t, "IntentSubmitted in acme", e => e.Domain == Acme && e.Event == "IntentSubmitted");
        var granted = t[submitted].IntentId!;
        bool Of(Entry e, string domain, string type, string? intent = null, string? reason = null) =>
            e.Domain == domain && e.Event == type && (intent is null || e.IntentId == intent) && (reason is null || e.Reason == reason);
        var endorsedAtPartner = First(t, "IntentEndorsed in partner", e => Of(e, Partner, "IntentEndorsed", granted), submitted);
        var issued = First(t, "GrantIssued in partner", e => Of(e, Partner, "GrantIssued", granted), endorsedAtPartner);
        var issuedAtAcme = First(t, "GrantIssued crossing to acme", e => Of(e, Acme, "GrantIssued", granted), issued);
        var started = First(t, "ExecutionStarted in partner", e => Of(e, Partner, "ExecutionStarted", granted), issuedAtAcme);
        var renewed = First(t, "GrantRenewed in partner", e => Of(e, Partner, "GrantRenewed", granted), started);
        // Partner, which decided the grant, renews it; acme's side never asks its own Authorize (it holds only the egress decision).
        Assert.DoesNotContain(t, e => e.Domain == Acme && e.Event == "EvaluateIntent");
        Assert.DoesNotContain(t, e => e.IntentId == granted && e.Event == "GrantDenied" && e.Index < First(t, "ExecutionCompleted", x => Of(x, Acme, "ExecutionCompleted", granted)));

        // Phase 2: a denial by partner's policy (decided in partner, crossing back) and one by acme's egress policy (never crossing).
        var byPartner = First(t, "GrantDenied by partner", e => Of(e, Partner, "GrantDenied", reason: "PolicyDenied"), renewed);
        First(t, "partner's denial crossing to acme", e => Of(e, Acme, "GrantDenied", t[byPartner].IntentId, "PolicyDenied"), byPartner);
        var byEgress = First(t, "GrantDenied by acme's egress", e => Of(e, Acme, "GrantDenied", reason: "PolicyDenied") && e.IntentId != t[byPartner].IntentId, byPartner);
        Assert.DoesNotContain(t, e => e.Domain == Partner && e.IntentId == t[byEgress].IntentId);

        // Phase 3: partner's new epoch re-evaluates the running execution, which is renewed again, then completes.
        var reevaluated = First(t, "EvaluateIntent (re-evaluation) in partner", e => Of(e, Partner, "EvaluateIntent", granted), byEgress);
        var renewedAgain = First(t, "GrantRenewed after the re-evaluation", e => Of(e, Partner, "GrantRenewed", granted), reevaluated);
        First(t, "PolicySynced of partner seen in acme", e => Of(e, Acme, "PolicySynced"));
        var completed = First(t, "ExecutionCompleted in partner", e => Of(e, Partner, "ExecutionCompleted", granted), renewedAgain);

        // Phase 4: the stall lapses trust, the scoped halt stops the second execution in both domains, SyncStale, restored.
        var lapsed = First(t, "TrustLapsed(SyncStalled) in acme", e => Of(e, Acme, "TrustLapsed", reason: "SyncStalled"), completed);
        var halt = First(t, "HaltExecution(SyncStalled) in acme", e => Of(e, Acme, "HaltExecution", reason: "SyncStalled"), lapsed);
        var haltedAtAcme = First(t, "ExecutionHalted in acme", e => Of(e, Acme, "ExecutionHalted", reason: "SyncStalled"), halt);
        var halted = t[haltedAtAcme].IntentId!;
        Assert.NotEqual(granted, halted);
        var haltedAtPartner = First(t, "ExecutionHalted in partner", e => Of(e, Partner, "ExecutionHalted", halted, "SyncStalled"), haltedAtAcme);
        var stale = First(t, "GrantDenied(SyncStale) in acme", e => Of(e, Acme, "GrantDenied", reason: "SyncStale"), haltedAtPartner);
        var restored = First(t, "TrustRestored in acme", e => Of(e, Acme, "TrustRestored"), stale);
        Assert.DoesNotContain(t, e => e.Index > restored && e.IntentId == halted && e.Event == "ExecutionStarted");

        // Phase 5: each domain's checkpoints are cosigned by the other's witness (the answer is seen in both buses).
        First(t, "CheckpointCosigned in acme", e => Of(e, Acme, "CheckpointCosigned"));
        First(t, "CheckpointCosigned in partner", e => Of(e, Partner, "CheckpointCosigned"));

        // Phase 6: acme asks partner for its part of both intents over the bridge.
        foreach (var intent in new[] { granted, halted })
        {
            var asked = First(t, $"ProofRequest for {intent} in partner", e => Of(e, Partner, "ProofRequest", intent), restored);
            First(t, $"ProofResponse for {intent} in acme", e => Of(e, Acme, "ProofResponse", intent), asked);
        }

        Assert.DoesNotContain(t, e => e.Event.StartsWith("Fault<", StringComparison.Ordinal));
    }

    [Fact(Timeout = 180_000)]
    public async Task The_evidence_left_in_the_data_directory_verifies_against_the_pinned_roots_only_and_not_after_one_byte_changes()
    {
        var (code, output, error) = await RunAsync(null, "demo", "--data", _data);
        Assert.True(code == 0, output + error);
        Assert.Contains("part 6 of 6:", output, StringComparison.Ordinal);

        var pinned = Path.Combine(_data, "pinned");
        Assert.Equal(["acme.example_prod.keyset.json", "acme.example_prod.vkey", "partner.example_prod.keyset.json", "partner.example_prod.vkey"],
            Directory.GetFiles(pinned).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var bundles = Directory.GetFiles(Path.Combine(_data, "evidence"), "*.json");
        Assert.Equal(2, bundles.Length);
        foreach (var bundle in bundles)
        {
            var (verified, report, _) = await RunAsync(null, "proof", "verify", bundle, "--trust", pinned, "--min-cosignatures", "1");
            Assert.True(verified == 0, report);
            Assert.Contains("PASS peer partner.example/prod/lineage", report, StringComparison.Ordinal);

            // One byte of a leaf changed, in acme's part and then in partner's part: refused.
            var text = await File.ReadAllTextAsync(bundle);
            var leaves = new[] { text.IndexOf("\"leaf\": \"", StringComparison.Ordinal), text.LastIndexOf("\"leaf\": \"", StringComparison.Ordinal) };
            Assert.True(leaves[0] > 0 && leaves[1] > leaves[0], "the bundle has leaves in two parts");
            foreach (var leaf in leaves)
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                var at = leaf + "\"leaf\": \"".Length + 12;
                bytes[at] = (byte)(bytes[at] == (byte)'A' ? 'B' : 'A');
                var tampered = Path.Combine(_data, "flipped.json");
                await File.WriteAllBytesAsync(tampered, bytes);
                var (refused, refusal, _) = await RunAsync(null, "proof", "verify", tampered, "--trust", pinned, "--min-cosignatures", "1");
                Assert.True(refused == 1, refusal);
            }
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task The_demo_exits_non_zero_naming_the_step_that_did_not_behave_as_expected()
    {
        // Partner's pushed policy withdraws the allow of the running execution: its re-evaluation denies and halts it.
        var command = new DemoCommand(new DemoScenario { PushedPolicyWithdrawsTheAllow = true });

        var (code, output, error) = await RunAsync(command, "--json");

        Assert.Equal(1, code);
        using var summary = JsonDocument.Parse(output);
        Assert.False(summary.RootElement.GetProperty("ok").GetBoolean());
        var last = summary.RootElement.GetProperty("steps").EnumerateArray().Last();
        Assert.Equal("re-evaluation still allows the running execution", last.GetProperty("name").GetString());
        Assert.False(last.GetProperty("ok").GetBoolean());
        Assert.Contains("PolicyRevoked", last.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("step 're-evaluation still allows the running execution' failed", error, StringComparison.Ordinal);
        Assert.Contains(Timeline(summary), e => e.Domain == Partner && e.Event == "GrantDenied" && e.Reason == "PolicyRevoked");
    }

    [Fact(Timeout = 30_000)]
    public async Task A_data_directory_that_is_not_empty_is_refused()
    {
        Directory.CreateDirectory(_data);
        await File.WriteAllTextAsync(Path.Combine(_data, "something"), "x");

        var (code, _, error) = await RunAsync(null, "demo", "--data", _data);

        Assert.Equal(2, code);
        Assert.Contains("not empty", error, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
            // Not created (a refused run), or SQLite still holds a file a moment after the hosts stopped.
        }
    }
}
