using System.Text.Json;
using MeshBus.Cli;
using MeshBus.Contracts;
using MeshBus.Trust;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary><c>meshbus agent release SUBJECT</c>: the operator's half of lifting a quarantine, signed by the domain's root.</summary>
public sealed class AgentReleaseCommandTests : IDisposable
{
    private const string Domain = "acme.example/prod";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "meshbus-release-" + Guid.NewGuid().ToString("N")[..8]);

    public AgentReleaseCommandTests() => DomainAdministration.Initialize(_dir, Domain, DateTimeOffset.UtcNow);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CommandLineApp.RunAsync(args, new CliConsole(output, error, new StringReader("")));
        return (code, output.ToString(), error.ToString());
    }

    [Fact(Timeout = 30_000)]
    public async Task Release_prints_an_AgentReleased_signed_by_the_domains_root_naming_the_quarantine()
    {
        var (code, output, err) = await RunAsync("agent", "release", Domain + "/agents/deployer", "--domain-dir", _dir,
            "--quarantined-at", "2026-12-06T01:02:03.456Z", "--by", "alice", "--print");

        Assert.True(code == 0, err);
        var release = JsonSerializer.Deserialize<AgentReleased>(output, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        Assert.Equal(Domain, release.Domain);
        Assert.Equal(Domain + "/agents/deployer", release.Agent);
        Assert.Equal("alice", release.ReleasedBy);
        Assert.Equal(DateTimeOffset.Parse("2026-12-06T01:02:03.456Z", System.Globalization.CultureInfo.InvariantCulture), release.QuarantinedAt);
        var keys = DomainKeys.Load(_dir);
        var verifier = new GovernanceVerifier(keys.LoadTrust(), new Dictionary<string, VerifierKey> { [Domain] = keys.Root });
        Assert.True(verifier.Verify(release).IsValid, verifier.Verify(release).Detail);
        Assert.False(verifier.Verify(release with { Agent = Domain + "/agents/other" }).IsValid);
        Assert.False(verifier.Verify(release with { QuarantinedAt = release.QuarantinedAt!.Value.AddSeconds(1) }).IsValid);
    }

    [Fact(Timeout = 30_000)]
    public async Task Release_without_the_quarantine_it_lifts_is_a_usage_error()
    {
        var (code, _, err) = await RunAsync("agent", "release", Domain + "/agents/deployer", "--domain-dir", _dir, "--print");

        Assert.Equal(2, code);
        Assert.Contains("--quarantined-at", err, StringComparison.Ordinal);
    }

    [Fact(Timeout = 30_000)]
    public async Task Release_with_an_unreadable_time_or_no_subject_is_a_usage_error()
    {
        var badTime = await RunAsync("agent", "release", Domain + "/agents/deployer", "--domain-dir", _dir, "--quarantined-at", "yesterday", "--print");
        var noSubject = await RunAsync("agent", "release", "--domain-dir", _dir, "--quarantined-at", "2026-12-06T01:02:03Z", "--print");

        Assert.Equal(2, badTime.Code);
        Assert.Contains("RFC 3339", badTime.Err, StringComparison.Ordinal);
        Assert.Equal(2, noSubject.Code);
        Assert.Contains("SUBJECT", noSubject.Err, StringComparison.Ordinal);
    }

    [Fact(Timeout = 60_000)]
    public async Task Release_with_an_unreachable_broker_ends_with_one_line_and_exit_1_within_its_bound()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var (code, output, err) = await RunAsync("agent", "release", Domain + "/agents/deployer", "--domain-dir", _dir,
            "--quarantined-at", "2026-12-06T01:02:03.456Z", "--rabbitmq", "amqp://u:p@127.0.0.1:1/");

        Assert.Equal(1, code);
        Assert.Empty(output);
        Assert.StartsWith("meshbus agent release: error: the broker amqp://127.0.0.1:1/ did not confirm the release", err, StringComparison.Ordinal);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.True(watch.Elapsed < MeshBus.Cli.Commands.Halt.HaltCommand.BrokerTimeout + TimeSpan.FromSeconds(15), watch.Elapsed.ToString());
    }
}
