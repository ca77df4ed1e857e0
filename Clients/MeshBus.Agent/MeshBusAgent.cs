using System.Collections.Concurrent;
using System.Security.Cryptography;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.Logging;

namespace MeshBus.Agent;

/// <summary>
/// An agent on its home domain's bus. It signs and publishes intents, receives its grants, denials and halts on its
/// own queue (<see cref="AgentQueue.Name"/> of its subject), verifies each grant before it becomes a <see cref="Lease"/>,
/// and keeps the lease honest: heartbeats, renewals, and a token that fires on a halt or at lease expiry by its own
/// monotonic clock, even if every halt is lost.
/// </summary>
public sealed class MeshBusAgent : IAsyncDisposable
{
    private readonly IBus _bus;
    private readonly MeshBusAgentOptions _options;
    private readonly byte[] _publicKey;
    private readonly ConcurrentDictionary<Guid, Pending> _pending = new();
    private readonly ConcurrentDictionary<Guid, Lease> _leases = new();
    private readonly PolicyFloor _floor = new();
    private readonly string? _credentialKeyId;
    private HostReceiveEndpointHandle? _endpoint;
    private long _ignored;

    private MeshBusAgent(IBus bus, MeshBusAgentOptions options)
    {
        _bus = bus;
        _options = options;
        _publicKey = Ed25519Keys.PublicKeyOf(options.PrivateKey);
        var parsed = CompactJws.Parse(options.Credential, Credentials.Type);
        _credentialKeyId = parsed.IsValid ? parsed.Value!.KeyId : null;
    }

    /// <summary>The agent subject.</summary>
    public string Subject => _options.Subject;

    /// <summary>The queue the agent reads.</summary>
    public string QueueName => AgentQueue.Name(_options.Subject);

    /// <summary>The agent's raw public key.</summary>
    public byte[] PublicKey => (byte[])_publicKey.Clone();

    /// <summary>
    /// How many messages this agent refused to act on: a denial or halt whose domain signature did not verify (forged,
    /// or meant for another agent). Each is logged and otherwise ignored.
    /// </summary>
    public long IgnoredMessages => Interlocked.Read(ref _ignored);

    internal MeshBusAgentOptions Options => _options;

    internal string? CredentialKeyId => _credentialKeyId;

    /// <summary>Connects the agent's queue on <paramref name="bus"/> and returns the agent once the queue is ready.</summary>
    public static async Task<MeshBusAgent> ConnectAsync(IBus bus, MeshBusAgentOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bus);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Subject);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.HomeDomain);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Credential);
        var agent = new MeshBusAgent(bus, options);
        agent._endpoint = bus.ConnectReceiveEndpoint(agent.QueueName, e =>
        {
            // Only what is sent to this queue: never bind it to the published exchanges, or it would read every
            // agent's grants (DESIGN.md §9).
            e.ConfigureConsumeTopology = false;
            e.Handler<GrantIssued>(c => agent.OnGrantIssued(c.Message));
            e.Handler<GrantDenied>(c => agent.OnGrantDenied(c.Message));
            e.Handler<GrantRenewed>(c => agent.OnGrantRenewed(c.Message));
            e.Handler<HaltExecution>(c => agent.OnHalt(c.Message));
        });
        await agent._endpoint.Ready.WaitAsync(cancellationToken);
        return agent;
    }

    /// <summary>
    /// Signs and publishes an intent, then waits for the decision. A grant becomes a <see cref="Lease"/> only after it
    /// verifies (signature and key, <c>typ</c>, <c>aud</c> = the target domain, <c>cnf</c> = this agent's key,
    /// <c>exp</c>, the intent digest, and policy epochs not older than the latest this agent has seen); otherwise the
    /// outcome is a <see cref="Denial"/> with <see cref="Denial.RejectedByAgent"/> set.
    /// </summary>
    /// <exception cref="IntentDecisionTimeoutException">No decision within <see cref="MeshBusAgentOptions.DecisionTimeout"/>.</exception>
    public async Task<IntentOutcome> SubmitIntentAsync(IntentRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var clock = _options.TimeProvider;
        var unsigned = new IntentSubmitted(
            request.IntentId ?? Guid.NewGuid(),
            _options.HomeDomain,
            _options.Subject,
            request.TargetDomain ?? _options.HomeDomain,
            request.Action,
            request.Resource,
            request.Parameters,
            (long)Math.Ceiling(request.MaxDuration.TotalSeconds),
            Base64Url.Encode(RandomNumberGenerator.GetBytes(16)),
            clock.GetUtcNow(),
            _options.Credential,
            "");
        var intent = IntentSignature.Sign(unsigned, _options.PrivateKey);
        var pending = new Pending(intent, IntentSignature.Digest(intent));
        if (!_pending.TryAdd(intent.IntentId, pending))
        {
            throw new InvalidOperationException($"intent {intent.IntentId} is already waiting for a decision");
        }

        try
        {
            // The agent ingress: the only exchange for intents an agent's broker user may write (DESIGN.md §9).
            var ingress = await _bus.GetSendEndpoint(AgentIngress.IntentsAddress(_options.EntityPrefix));
            await ingress.Send(intent, cancellationToken);
            // The decision wait is real time on purpose: it bounds a network round trip, not a lease.
            return await pending.Outcome.Task.WaitAsync(_options.DecisionTimeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new IntentDecisionTimeoutException(intent.IntentId, _options.DecisionTimeout);
        }
        finally
        {
            _pending.TryRemove(intent.IntentId, out _);
        }
    }

    /// <summary>Stops reading the agent's queue and ends every lease still held (as halted, locally).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var lease in _leases.Values)
        {
            await lease.DisposeAsync();
        }

        if (_endpoint is not null)
        {
            await _endpoint.StopAsync();
        }
    }

    /// <summary>Sends an execution report, already signed, to the agent ingress of reports.</summary>
    internal async Task ReportAsync<T>(T report, CancellationToken cancellationToken = default)
        where T : class
    {
        var ingress = await _bus.GetSendEndpoint(AgentIngress.ReportsAddress(_options.EntityPrefix));
        await ingress.Send(report, cancellationToken);
    }

    internal void Forget(Lease lease) => _leases.TryRemove(lease.IntentId, out _);

    /// <summary>
    /// Verifies a grant for one of this agent's intents; on success the epochs it carries become the floor of its signed
    /// issuer (the unsigned <c>Domain</c> of the message that carried it plays no part).
    /// </summary>
    internal VerificationResult<GrantClaims> VerifyGrant(string jws, IntentSubmitted intent, string digest, int minRenewal)
    {
        var result = Grants.Verify(jws, new GrantVerificationOptions
        {
            Audience = intent.TargetDomain,
            AgentPublicKey = _publicKey,
            KeyResolver = _options.KeyResolver,
            Now = _options.TimeProvider.GetUtcNow(),
            Skew = _options.Skew,
            IntentDigest = digest,
        });
        if (!result.IsValid)
        {
            return result;
        }

        var claims = result.Value!;
        if (claims.IntentId != intent.IntentId || !string.Equals(claims.Subject, _options.Subject, StringComparison.Ordinal))
        {
            return VerificationResult<GrantClaims>.Fail(GovernanceReason.SignatureInvalid, "grant names another intent or agent");
        }

        if (claims.Renewal < minRenewal)
        {
            return VerificationResult<GrantClaims>.Fail(GovernanceReason.ReplayDetected, $"grant renewal {claims.Renewal} is older than {minRenewal}");
        }

        var floor = _floor.Check(claims);
        if (!floor.IsValid)
        {
            return floor;
        }

        _floor.Raise(claims);
        return result;
    }

    private Task OnGrantIssued(GrantIssued message)
    {
        // Receipt time first: the lease is measured from here on the monotonic clock.
        var receivedAt = _options.TimeProvider.GetTimestamp();
        if (!_pending.TryGetValue(message.IntentId, out var pending))
        {
            return Task.CompletedTask; // a duplicate after the decision, or not ours to wait for
        }

        var verified = VerifyGrant(message.Grant, pending.Intent, pending.Digest, 0);
        if (!verified.IsValid)
        {
            pending.Outcome.TrySetResult(IntentOutcome.Denied(new Denial(message.IntentId, verified.Reason, "grant refused by the agent: " + verified.Detail, RejectedByAgent: true)));
            return Task.CompletedTask;
        }

        var lease = new Lease(this, pending.Intent, pending.Digest, message.Grant, verified.Value!, receivedAt);
        if (_leases.TryAdd(message.IntentId, lease) && !pending.Outcome.TrySetResult(IntentOutcome.Granted(lease)))
        {
            _leases.TryRemove(message.IntentId, out _);
        }

        return Task.CompletedTask;
    }

    private Task OnGrantDenied(GrantDenied message)
    {
        var verified = AgentNotices.Verify(message, _options.Subject, _options.KeyResolver, _options.TimeProvider.GetUtcNow());
        if (!verified.IsValid)
        {
            // Anyone who can put a message in this queue could forge one from a known intent id: never act on it.
            Ignore("GrantDenied", message.IntentId, verified);
            return Task.CompletedTask;
        }

        if (_pending.TryGetValue(message.IntentId, out var pending))
        {
            pending.Outcome.TrySetResult(IntentOutcome.Denied(new Denial(message.IntentId, message.Reason, message.Detail)));
            return Task.CompletedTask;
        }

        // A denied renewal ends the lease now rather than at expiry. Only a recorded denial can be one (the intent's own
        // decision was a grant); an unrecorded one is an answer to someone's bad input under this id, never a stop.
        if (message.LineageIndex is null)
        {
            _options.Logger?.LogInformation("Agent {Agent} keeps lease {IntentId}: an unrecorded denial ({Reason}) is no renewal denial", _options.Subject, message.IntentId, message.Reason);
            return Task.CompletedTask;
        }

        return _leases.TryGetValue(message.IntentId, out var lease)
            ? lease.StopAsync(message.Reason, "renewal denied: " + message.Detail, null)
            : Task.CompletedTask;
    }

    private Task OnGrantRenewed(GrantRenewed message)
    {
        var receivedAt = _options.TimeProvider.GetTimestamp();
        return _leases.TryGetValue(message.IntentId, out var lease) ? lease.ApplyRenewalAsync(message, receivedAt) : Task.CompletedTask;
    }

    private async Task OnHalt(HaltExecution halt)
    {
        var verified = AgentNotices.Verify(halt, _options.KeyResolver, _options.TimeProvider.GetUtcNow());
        if (!verified.IsValid)
        {
            Ignore("HaltExecution", halt.IntentId, verified);
            return;
        }

        foreach (var lease in _leases.Values)
        {
            if (lease.IsHaltedBy(halt))
            {
                await lease.StopAsync(halt.Reason, halt.Detail, halt.HaltId);
            }
        }
    }

    private void Ignore<T>(string type, Guid? intentId, VerificationResult<T> failure)
    {
        Interlocked.Increment(ref _ignored);
        _options.Logger?.LogWarning("Agent {Agent} ignored a {Type} for intent {IntentId}: {Reason} {Detail}", _options.Subject, type, intentId, failure.Reason, failure.Detail);
    }

    private sealed class Pending(IntentSubmitted intent, string digest)
    {
        public IntentSubmitted Intent { get; } = intent;

        public string Digest { get; } = digest;

        public TaskCompletionSource<IntentOutcome> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
