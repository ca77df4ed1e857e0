using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;

namespace MeshBus.Agent;

/// <summary>
/// A verified grant held as a lease. <see cref="Token"/> is cancelled when a matching halt arrives or when the lease
/// runs out on the agent's own monotonic clock (<c>receipt time + (exp − iat) − skew</c>, and never past <c>exp − skew</c> on
/// its wall clock, so a grant delivered late does not stretch the work), whichever comes first; the
/// work must observe it. After <see cref="StartAsync"/>, heartbeats go out on an interval, and renewals that verify
/// move the deadline.
/// </summary>
public sealed class Lease : IAsyncDisposable
{
    private readonly MeshBusAgent _agent;
    private readonly IntentSubmitted _intent;
    private readonly string _digest;
    private readonly CancellationTokenSource _cts = new();
    private readonly object _gate = new();
    private readonly ITimer _expiryTimer;
    private ITimer? _heartbeatTimer;
    private long _deadlineTimestamp;
    private long _heartbeatSequence;
    private int _stopped;
    private bool _started;

    internal Lease(MeshBusAgent agent, IntentSubmitted intent, string digest, string grant, GrantClaims claims, long receivedAt)
    {
        _agent = agent;
        _intent = intent;
        _digest = digest;
        Grant = grant;
        Claims = claims;
        GrantKeyId = CompactJws.Parse(grant, Grants.Type).Value?.KeyId;
        _deadlineTimestamp = Deadline(receivedAt, claims);
        _expiryTimer = Clock.CreateTimer(_ => _ = ExpireAsync(), null, Remaining(), Timeout.InfiniteTimeSpan);
    }

    /// <summary>The intent.</summary>
    public Guid IntentId => _intent.IntentId;

    /// <summary>The current grant (JWS), to present to resources.</summary>
    public string Grant { get; private set; }

    /// <summary>The current grant's verified claims.</summary>
    public GrantClaims Claims { get; private set; }

    /// <summary>The key id that signed the current grant.</summary>
    public string? GrantKeyId { get; private set; }

    /// <summary>Cancelled on a halt or at lease expiry: the work must stop.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>Why the lease ended (<see cref="GovernanceReason.None"/> while it holds or after completion).</summary>
    public GovernanceReason StopReason { get; private set; }

    /// <summary>Explanation of <see cref="StopReason"/>.</summary>
    public string? StopDetail { get; private set; }

    /// <summary>Time left on the agent's own clock.</summary>
    public TimeSpan Remaining()
    {
        var left = Clock.GetElapsedTime(Clock.GetTimestamp(), Interlocked.Read(ref _deadlineTimestamp));
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private TimeProvider Clock => _agent.Options.TimeProvider;

    /// <summary>Reports <c>ExecutionStarted</c> and starts heartbeats.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_started || _stopped != 0)
            {
                throw new InvalidOperationException(_started ? "the lease is already started" : $"the lease has ended: {StopReason}");
            }

            _started = true;
        }

        await _agent.ReportAsync(Sign(new ExecutionStarted(IntentId, _intent.Domain, _intent.Agent, Claims.GrantId, Clock.GetUtcNow())), cancellationToken);
        var interval = _agent.Options.HeartbeatInterval;
        _heartbeatTimer = Clock.CreateTimer(_ => _ = HeartbeatAsync(), null, interval, interval);
    }

    /// <summary>Sends one heartbeat now (also sent on the interval after <see cref="StartAsync"/>).</summary>
    public Task HeartbeatAsync()
    {
        if (_stopped != 0)
        {
            return Task.CompletedTask;
        }

        var seq = Interlocked.Increment(ref _heartbeatSequence);
        return _agent.ReportAsync(Sign(new ExecutionHeartbeat(IntentId, _intent.Domain, _intent.Agent, seq, Clock.GetUtcNow())));
    }

    /// <summary>Reports <c>ExecutionCompleted</c> and releases the lease.</summary>
    public async Task CompleteAsync(string? outcome = null, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            throw new InvalidOperationException($"the lease has already ended: {StopReason} {StopDetail}");
        }

        StopTimers();
        _agent.Forget(this);
        await _agent.ReportAsync(Sign(new ExecutionCompleted(IntentId, _intent.Domain, _intent.Agent, Clock.GetUtcNow(), outcome)), cancellationToken);
    }

    /// <summary>
    /// Signs <paramref name="challenge"/> with the agent key, so a resource's <see cref="GrantVerifier"/> can check
    /// that the presenter holds the grant's <c>cnf</c> key.
    /// </summary>
    public string Prove(ReadOnlySpan<byte> challenge) => Base64Url.Encode(Ed25519Keys.Sign(_agent.Options.PrivateKey, GrantVerifier.ProofInput(challenge)));

    /// <summary>Ends the lease locally (as an agent-side halt) if it still holds.</summary>
    public ValueTask DisposeAsync() => new(StopAsync(GovernanceReason.OperatorHalt, "the agent released the lease", null));

    internal bool IsHaltedBy(HaltExecution halt) => halt.Scope switch
    {
        GovernanceScope.Execution => halt.IntentId == IntentId || string.Equals(halt.Subject, IntentId.ToString(), StringComparison.OrdinalIgnoreCase),
        GovernanceScope.Agent => string.Equals(halt.Subject, _intent.Agent, StringComparison.Ordinal),
        GovernanceScope.Peer => halt.Subject == _intent.TargetDomain || halt.Subject == _intent.Domain || halt.Subject == Claims.Issuer,
        GovernanceScope.Key => halt.Subject == GrantKeyId || halt.Subject == _agent.CredentialKeyId,
        _ => false,
    };

    internal Task ApplyRenewalAsync(GrantRenewed renewed, long receivedAt)
    {
        if (_stopped != 0)
        {
            return Task.CompletedTask;
        }

        var verified = _agent.VerifyGrant(renewed.Grant, _intent, _digest, Claims.Renewal + 1);
        if (!verified.IsValid)
        {
            // A renewal that does not verify is ignored: the current lease still runs out on time.
            return Task.CompletedTask;
        }

        lock (_gate)
        {
            Grant = renewed.Grant;
            Claims = verified.Value!;
            GrantKeyId = CompactJws.Parse(renewed.Grant, Grants.Type).Value?.KeyId ?? GrantKeyId;
            Interlocked.Exchange(ref _deadlineTimestamp, Deadline(receivedAt, Claims));
            _expiryTimer.Change(Remaining(), Timeout.InfiniteTimeSpan);
        }

        return Task.CompletedTask;
    }

    internal async Task StopAsync(GovernanceReason reason, string detail, Guid? haltId)
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        StopReason = reason;
        StopDetail = detail;
        StopTimers();
        _agent.Forget(this);
        await _cts.CancelAsync();
        // Acknowledge even when the work had not started: the halt counts as done only once this is recorded.
        await _agent.ReportAsync(Sign(new ExecutionHalted(IntentId, _intent.Domain, _intent.Agent, reason, detail, Clock.GetUtcNow(), haltId)));
    }

    private Task ExpireAsync()
    {
        // A renewal may have moved the deadline after this callback was queued.
        if (Remaining() > TimeSpan.Zero)
        {
            return Task.CompletedTask;
        }

        return StopAsync(GovernanceReason.LeaseExpired, $"lease of grant {Claims.GrantId} expired on the agent's clock", null);
    }

    // Reports carry the same proof of possession as the intent: the mesh checks them with the grant's cnf key.
    private ExecutionStarted Sign(ExecutionStarted report) => ExecutionReportSignature.Sign(report, _agent.Options.PrivateKey);

    private ExecutionHeartbeat Sign(ExecutionHeartbeat report) => ExecutionReportSignature.Sign(report, _agent.Options.PrivateKey);

    private ExecutionCompleted Sign(ExecutionCompleted report) => ExecutionReportSignature.Sign(report, _agent.Options.PrivateKey);

    private ExecutionHalted Sign(ExecutionHalted report) => ExecutionReportSignature.Sign(report, _agent.Options.PrivateKey);

    private void StopTimers()
    {
        _expiryTimer.Dispose();
        _heartbeatTimer?.Dispose();
    }

    private long Deadline(long receivedAt, GrantClaims claims)
    {
        var life = claims.ExpiresAt - claims.IssuedAt - _agent.Options.Skew;
        var byReceipt = receivedAt + Ticks(life);

        // ...and never past exp − skew on the agent's wall clock: a grant or renewal that was in transit for a while must
        // not carry the work past its exp (measured: renewals queued behind a loaded bridge overran it by up to 7 s).
        var byWall = Clock.GetTimestamp() + Ticks(claims.ExpiresAt - _agent.Options.Skew - Clock.GetUtcNow());
        return Math.Min(byReceipt, byWall);
    }

    private long Ticks(TimeSpan span) => span <= TimeSpan.Zero ? 0 : (long)(span.TotalSeconds * Clock.TimestampFrequency);
}
