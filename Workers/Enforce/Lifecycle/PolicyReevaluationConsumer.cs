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
    ILogger<PolicyReevaluationConsumer> logger) : IConsumer<PolicySynced>
{
    private long _fannedOut;

    /// <inheritdoc />
    public async Task Consume(ConsumeContext<PolicySynced> context)
    {
        var m = context.Message;
        var self = mesh.Value.Domain;
        if (m.Domain != self || m.Publisher != self || m.Scope != PolicyScope.Domain || m.Epoch <= Interlocked.Read(ref _fannedOut))
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
        InterlockedMax(ref _fannedOut, m.Epoch);
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
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
