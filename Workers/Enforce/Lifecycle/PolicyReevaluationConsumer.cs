using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Trust;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Enforce.Lifecycle;

/// <summary>
/// Re-evaluation on a new epoch (DESIGN.md §3 phase 6): this domain's own <see cref="PolicySynced"/> says Sync applied an
/// epoch and every live Authorize replica loaded it, so renewals are now decided under it. Every live execution this
/// domain is a party to (the saga index) is asked to re-evaluate (<see cref="ExecutionReevaluationRequested"/>); the saga
/// re-evaluates those this domain decided whose grant predates the epoch, once per epoch, with <c>EvaluateIntent</c>.
/// The acknowledgement is signed by the domain's envelope key and verified here; one that does not verify goes to the
/// error queue and re-evaluates nothing. Sync repeats the acknowledgement every interval: an epoch already fanned out by
/// this replica is skipped (the sagas would ignore it anyway).
/// </summary>
public sealed class PolicyReevaluationConsumer(ISagaIndex index, EnforceGovernanceVerifier verifier, IOptions<MeshBusOptions> mesh, TimeProvider clock,
    ILogger<PolicyReevaluationConsumer> logger, ReevaluatedEpoch fannedOut) : IConsumer<PolicySynced>
{
    /// <inheritdoc />
    public async Task Consume(ConsumeContext<PolicySynced> context)
    {
        var m = context.Message;
        var self = mesh.Value.Domain;
        if (m.Domain != self || m.Publisher != self || m.Scope != PolicyScope.Domain || m.Epoch <= fannedOut.Epoch)
        {
            return;
        }

        var verified = verifier.Verifier.Verify(m, clock.GetUtcNow());
        if (!verified.IsValid)
        {
            throw new MalformedMessageException(typeof(PolicySynced), [$"PolicySynced epoch {m.Epoch} of {m.Domain} refused ({verified.Reason}): {verified.Detail}"]);
        }

        var live = await index.FindAsync<IntentLifecycleState>(IntentLifecycleState.PeerIndex, self, context.CancellationToken);
        foreach (var id in live)
        {
            await context.Publish(new ExecutionReevaluationRequested(id, m.Epoch), context.CancellationToken);
        }

        logger.LogInformation("Policy epoch {Epoch} applied: {Count} live execution(s) asked to re-evaluate", m.Epoch, live.Count);
        fannedOut.Advance(m.Epoch);
    }
}

/// <summary>
/// The highest epoch this replica fanned out. A singleton: MassTransit makes a consumer per message, so a field of the
/// consumer forgot it and every repeated acknowledgement fanned out again.
/// </summary>
public sealed class ReevaluatedEpoch
{
    private long _epoch;

    /// <summary>The highest epoch fanned out (0 before any).</summary>
    public long Epoch => Interlocked.Read(ref _epoch);

    /// <summary>Records <paramref name="epoch"/> when it is higher.</summary>
    public void Advance(long epoch)
    {
        long current;
        while ((current = Interlocked.Read(ref _epoch)) < epoch && Interlocked.CompareExchange(ref _epoch, epoch, current) != current)
        {
        }
    }
}

/// <summary>Enforce's verifier of its own domain's governance statements (the domain directory's key set and root).</summary>
/// <param name="Verifier">The verifier.</param>
public sealed record EnforceGovernanceVerifier(GovernanceVerifier Verifier)
{
    /// <summary>From the domain directory <paramref name="keyDirectory"/>.</summary>
    public static EnforceGovernanceVerifier FromDirectory(string keyDirectory)
    {
        var keys = DomainKeys.Load(keyDirectory);
        var trust = keys.LoadTrust();
        var roots = new Dictionary<string, VerifierKey>(trust.PinnedRoots, StringComparer.Ordinal) { [keys.Domain] = keys.Root };
        return new EnforceGovernanceVerifier(new GovernanceVerifier(trust, roots));
    }
}

/// <summary>The endpoint of the re-evaluation fan-out (competing consumers; one replica fans out each acknowledgement).</summary>
public sealed class PolicyReevaluationConsumerDefinition : ConsumerDefinition<PolicyReevaluationConsumer>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public PolicyReevaluationConsumerDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "enforce-reevaluation");
        ConcurrentMessageLimit = 1;
    }
}
