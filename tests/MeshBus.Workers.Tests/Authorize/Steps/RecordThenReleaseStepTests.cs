using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.Trust;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Paths;
using MeshBus.Workers.Authorize.Steps;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize.Steps;

public sealed class RecordThenReleaseStepTests : IAsyncLifetime
{
    private readonly TestDomainKeys _keys = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("meshbus-release-").FullName;
    private SqlLineageLog _lineage = null!;

    public Task InitializeAsync()
    {
        _lineage = LineageLogs.OpenSqlite(Path.Combine(_dir, "lineage.db"));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _lineage.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private RecordThenReleaseStep Step(ILineageLog? lineage = null) => new(
        lineage ?? _lineage, new TrustGrantSigner(_keys.AuthorizeKeys), new TrustIntentVerifier(_keys.AuthorizeKeys, StepFixtures.Authorize()),
        new EgressEndorser(_keys.AuthorizeKeys, StepFixtures.Authorize()), TimeProvider.System, StepFixtures.Authorize(), StepFixtures.Mesh,
        NullLogger<RecordThenReleaseStep>.Instance);

    private static PolicyOutcome Allow => new(true, GovernanceReason.None, "allowed", ["allow-deploy"], 120, 7, "sha256:p");

    [Fact(Timeout = 30_000)]
    public async Task An_allowed_decision_is_recorded_before_its_grant_and_the_grant_is_bound_to_the_record()
    {
        var v = StepFixtures.Verified(_keys, new TestAgent(_keys), _keys.Start);

        var decision = Assert.IsType<GrantDecision>(await Step().RecordAsync(v, _keys.Start, Allow, CancellationToken.None));

        var stored = await _lineage.GetByKeyAsync(DecisionRecord.DecisionKey(v.Intent.IntentId));
        Assert.NotNull(stored);
        Assert.Equal(stored.Index, decision.Grant.LineageIndex);
        var record = DecisionRecord.Parse(stored.Data);
        Assert.Equal(Grants.Issue(record.Lease!.ToGrantClaims(stored.Index), _keys.Signers[KeyUsage.Grant]), decision.Grant.Grant);
    }

    [Fact(Timeout = 30_000)]
    public async Task The_same_intent_recorded_again_releases_the_byte_identical_grant()
    {
        var v = StepFixtures.Verified(_keys, new TestAgent(_keys), _keys.Start);
        var first = Assert.IsType<GrantDecision>(await Step().RecordAsync(v, _keys.Start, Allow, CancellationToken.None));

        var again = Assert.IsType<GrantDecision>(await Step().RecordAsync(v, _keys.Start.AddSeconds(5), Allow, CancellationToken.None));

        Assert.Equal(first.Grant, again.Grant);
    }

    [Fact(Timeout = 30_000)]
    public async Task No_record_no_grant_when_the_log_fails()
    {
        var v = StepFixtures.Verified(_keys, new TestAgent(_keys), _keys.Start);

        var decision = Assert.IsType<DenialDecision>(await Step(new FaultyLineageLog(_lineage) { Throws = true }).RecordAsync(v, _keys.Start, Allow, CancellationToken.None));

        Assert.Equal(GovernanceReason.LineageUnavailable, decision.Denial.Reason);
        Assert.Null(decision.Denial.LineageIndex);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_recorded_denial_names_its_lineage_index()
    {
        var v = StepFixtures.Verified(_keys, new TestAgent(_keys), _keys.Start);

        var decision = Assert.IsType<DenialDecision>(await Step().RecordAsync(v, _keys.Start, PolicyStep.Denied(GovernanceReason.NoMatchingRule, "no rule"), CancellationToken.None));

        Assert.Equal((await _lineage.GetByKeyAsync(DecisionRecord.DecisionKey(v.Intent.IntentId)))!.Index, decision.Denial.LineageIndex);
    }
}
