using System.Text;
using MeshBus.Contracts;
using MeshBus.Ledger;
using MeshBus.Ledger.Decisions;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Steps;
using Xunit;

namespace MeshBus.Workers.Tests.Authorize.Steps;

public sealed class ReplayStepTests : IAsyncLifetime
{
    private readonly TestDomainKeys _keys = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("meshbus-replay-").FullName;
    private SqlLineageLog _lineage = null!;
    private SqliteQuarantineState _quarantine = null!;
    private ReplayStep _step = null!;

    private DateTimeOffset Now => _keys.Start;

    public Task InitializeAsync()
    {
        _lineage = LineageLogs.OpenSqlite(Path.Combine(_dir, "lineage.db"));
        _quarantine = new SqliteQuarantineState(Path.Combine(_dir, "state.db"));
        _step = new ReplayStep(new SqliteNonceStore(Path.Combine(_dir, "state.db")), _quarantine, _lineage, TimeProvider.System,
            StepFixtures.Authorize(o => o.MaxIntentAgeSeconds = 60));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _lineage.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private async Task<ReplayVerdict?> CheckAsync(VerifiedIntent v, DateTimeOffset now)
    {
        var lookups = _step.Begin(v.Intent, CancellationToken.None);
        try
        {
            return await _step.CheckAsync(v, lookups, now, CancellationToken.None);
        }
        finally
        {
            await lookups.SettleAsync();
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task A_new_intent_goes_on()
    {
        Assert.Null(await CheckAsync(StepFixtures.Verified(_keys, new TestAgent(_keys), Now), Now));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_nonce_spent_by_another_intent_is_a_replay()
    {
        var agent = new TestAgent(_keys);
        var first = StepFixtures.Verified(_keys, agent, Now);
        Assert.Null(await CheckAsync(first, Now));
        var again = first with { Intent = first.Intent with { IntentId = Guid.NewGuid() } };

        var verdict = Assert.IsType<ReplayVerdict.Refused>(await CheckAsync(again, Now));

        Assert.Equal(GovernanceReason.ReplayDetected, verdict.Outcome.Reason);
        Assert.Contains(first.Intent.IntentId.ToString(), verdict.Outcome.Detail, StringComparison.Ordinal);
    }

    [Fact(Timeout = 30_000)]
    public async Task An_intent_older_than_the_bound_is_a_replay()
    {
        var verdict = Assert.IsType<ReplayVerdict.Refused>(await CheckAsync(StepFixtures.Verified(_keys, new TestAgent(_keys), Now), Now.AddSeconds(61)));

        Assert.Equal(GovernanceReason.ReplayDetected, verdict.Outcome.Reason);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_quarantined_agent_is_refused()
    {
        var agent = new TestAgent(_keys);
        await _quarantine.ApplyAsync(agent.Subject, true, Now, CancellationToken.None);

        var verdict = Assert.IsType<ReplayVerdict.Refused>(await CheckAsync(StepFixtures.Verified(_keys, agent, Now), Now));

        Assert.Equal(GovernanceReason.Quarantined, verdict.Outcome.Reason);
    }

    [Fact(Timeout = 30_000)]
    public async Task An_intent_id_already_decided_returns_the_stored_record()
    {
        var v = StepFixtures.Verified(_keys, new TestAgent(_keys), Now);
        await _lineage.AppendAsync(new LineageEntry(DecisionRecord.DecisionKey(v.Intent.IntentId), DecisionRecord.DecisionType, Encoding.UTF8.GetBytes("{}")));

        var verdict = Assert.IsType<ReplayVerdict.AlreadyDecided>(await CheckAsync(v, Now));

        Assert.Equal(DecisionRecord.DecisionKey(v.Intent.IntentId), verdict.Existing.Key);
    }
}
