using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Policy;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Workers.Sync.Watchdog;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync.Federation;

/// <summary>
/// The federation policy of a member domain (<see cref="SyncOptions.FederationName"/>): a bundle is adopted only when the
/// root of every member (this domain's and every pinned peer's) signed it, it compiles, and its epoch is higher than the
/// adopted one; it may come from the operator's file (<see cref="SyncOptions.FederationPolicyBundleFile"/>, read again on
/// every interval) or from a member that relayed it. The adopted bundle is recorded as applied (heartbeats announce its
/// digest, which every peer's Authorize compares with its own before deciding), and published on every heartbeat
/// interval as <see cref="PolicyPublished"/> with <see cref="PolicyPublished.Publisher"/> = this domain: Authorize replicas
/// load it, the Lineage worker records it, and the bridge relays it to every peer. So a new epoch signed by every member
/// reaches all of them from whichever member's operator installed it first, and a member that missed it gets it on the
/// next interval. Two different bundles for one epoch, both signed by every member, are refused (the first stays). Once
/// every live Authorize replica of this domain decides under the adopted epoch, Sync acknowledges it
/// (<see cref="PolicySynced"/> with the federation as publisher), right after the adoption and then on every interval.
/// </summary>
public sealed class FederationPolicyDistributor(
    IBus bus,
    IAppliedGovernance governance,
    IServiceProvider services,
    IOptions<MeshBusOptions> mesh,
    IOptions<SyncOptions> options,
    TimeProvider clock,
    WorkerReadiness readiness,
    GovernanceSigner signer,
    IReplicaLoadStore replicas,
    ILogger<FederationPolicyDistributor> logger) : BackgroundService
{
    // After an adoption, how long (real time, at most one heartbeat interval) Sync looks for every Authorize replica to
    // have loaded it, and how often: the acknowledgement follows the last replica's report within one poll.
    private static readonly TimeSpan AcknowledgeWithin = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan AcknowledgePoll = TimeSpan.FromMilliseconds(20);
    private readonly object _gate = new();
    private readonly SemaphoreSlim _adopted = new(0, 1);
    private string? _bundle;
    private MeshBus.Policy.PolicyVersion? _version;
    private string? _file;

    /// <summary>The federation this domain is a member of, or null when it is none.</summary>
    public string? Federation => string.IsNullOrWhiteSpace(options.Value.FederationName) ? null : options.Value.FederationName;

    /// <summary>The adopted bundle's version, or null while none is.</summary>
    public MeshBus.Policy.PolicyVersion? Adopted
    {
        get
        {
            lock (_gate)
            {
                return _version;
            }
        }
    }

    /// <summary>
    /// Adopts <paramref name="bundleJson"/> when it is newer than the adopted one; true when it was adopted, false when it
    /// is the adopted one or older (a late copy changes nothing).
    /// </summary>
    /// <exception cref="PolicyBundleException">Not signed by every member's root, another federation's, or a rule does not compile.</exception>
    /// <exception cref="PolicyRolloutException">Another bundle than the adopted one for the same epoch.</exception>
    /// <exception cref="InvalidOperationException">This domain is not a member of a federation.</exception>
    public bool Adopt(string bundleJson, string source)
    {
        var federation = Federation ?? throw new InvalidOperationException("a federation policy arrived but Sync:FederationName is not set");
        lock (_gate)
        {
            // Every member re-publishes the adopted bundle every interval: the same document needs no second verification.
            if (bundleJson == _bundle)
            {
                return false;
            }
        }

        // Resolved here, not at start: a domain without keys yet must start and report not-ready, not crash.
        var peers = services.GetRequiredService<SyncPeers>();
        var roots = GovernanceVerifier.RootsOf(peers.Trust, OwnRoot()).Values;
        var version = new PolicyStore().Load(bundleJson, PolicySigners.EveryRoot(roots), PolicyScope.Federation, federation).Policy.Version;
        lock (_gate)
        {
            if (_version is { } current)
            {
                if (version.Epoch < current.Epoch || (version.Epoch == current.Epoch && version.Digest == current.Digest))
                {
                    return false;
                }

                if (version.Epoch == current.Epoch)
                {
                    throw new PolicyRolloutException(
                        $"federation {federation} has two bundles for epoch {version.Epoch}, both signed by every member: {current.Digest} (adopted) and {version.Digest} (from {source}); the adopted one stays");
                }
            }

            _bundle = bundleJson;
            _version = version;
            governance.Apply(PolicyScope.Federation, version.Epoch, version.Digest);
        }

        logger.LogInformation("Adopted the policy of federation {Federation} at epoch {Epoch} ({Digest}) from {Source}", federation, version.Epoch, version.Digest, source);
        readiness.Met("federation policy");
        try
        {
            _adopted.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled: the loop acknowledges the latest adoption anyway.
        }

        return true;
    }

    /// <summary>Adopts the operator's file when its content changed since it was last read; refusals are logged, never fatal.</summary>
    public void AdoptFileIfChanged()
    {
        var file = options.Value.FederationPolicyBundleFile;
        if (string.IsNullOrWhiteSpace(file))
        {
            return;
        }

        string content;
        try
        {
            content = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Refuse(file, "cannot read it: " + e.Message);
            return;
        }

        if (content == _file)
        {
            return;
        }

        _file = content;
        try
        {
            Adopt(content, file);
        }
        catch (Exception e) when (e is PolicyBundleException or PolicyRolloutException or KeySetException or FormatException or IOException)
        {
            Refuse(file, e.Message);
        }
    }

    /// <summary>Publishes the adopted bundle (to Authorize, the lineage and, over the bridge, every peer); false when none is adopted.</summary>
    public async Task<bool> PublishAsync(CancellationToken cancellationToken)
    {
        string? bundle;
        MeshBus.Policy.PolicyVersion? version;
        lock (_gate)
        {
            (bundle, version) = (_bundle, _version);
        }

        if (Federation is not { } federation || bundle is null || version is null)
        {
            return false;
        }

        await bus.Publish(new PolicyPublished(federation, PolicyScope.Federation, version.Epoch, version.Digest, bundle, clock.GetUtcNow())
        {
            Publisher = mesh.Value.Domain,
        }, cancellationToken);
        return true;
    }

    /// <summary>
    /// Sends this domain's acknowledgement of the adopted federation epoch (<see cref="PolicySynced"/>, publisher = the
    /// federation, signed with the envelope key; the bridge relays it to every peer) when every Authorize replica that
    /// reported within <see cref="SyncOptions.ReplicaLiveness"/> decides under it; false otherwise (none reporting is none loaded).
    /// </summary>
    public async Task<bool> AcknowledgeAsync(CancellationToken cancellationToken)
    {
        if (Federation is not { } federation || Adopted is not { } version)
        {
            return false;
        }

        var now = clock.GetUtcNow();
        var live = await replicas.LiveAsync(now - options.Value.ReplicaLiveness, cancellationToken);
        if (live.Count == 0 || live.Any(r => r.FederationDigest != version.Digest))
        {
            return false;
        }

        await bus.Publish(signer.Sign(new PolicySynced(mesh.Value.Domain, federation, PolicyScope.Federation, version.Epoch, version.Digest, now)), cancellationToken);
        return true;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (Federation is null)
        {
            return;
        }

        // Every interval: the file, the publication (late replicas and members catch up) and the acknowledgement. Right
        // after an adoption (from the file or a member), the acknowledgement is sent as soon as every replica loaded it.
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, clock);
        var tick = timer.WaitForNextTickAsync(stoppingToken).AsTask();
        Task? adopted = null;
        var fresh = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            AdoptFileIfChanged();
            try
            {
                await PublishAsync(stoppingToken);
                var acknowledged = await AcknowledgeAsync(stoppingToken);
                for (var waited = TimeSpan.Zero; fresh && !acknowledged && waited < AcknowledgeWithin && waited < options.Value.HeartbeatInterval; waited += AcknowledgePoll)
                {
                    await Task.Delay(AcknowledgePoll, stoppingToken);
                    acknowledged = await AcknowledgeAsync(stoppingToken);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Publishing or acknowledging the federation policy failed; retrying on the next interval: {Reason}", e.Message);
            }

            adopted ??= _adopted.WaitAsync(stoppingToken);
            if (await Task.WhenAny(tick, adopted) == tick)
            {
                if (!await tick)
                {
                    return;
                }

                tick = timer.WaitForNextTickAsync(stoppingToken).AsTask();
                fresh = false;
            }
            else
            {
                await adopted;
                adopted = null;
                fresh = true;
            }
        }
    }

    private VerifierKey? OwnRoot()
    {
        var root = Path.Combine(mesh.Value.ResolvedKeyDirectory, "root.vkey");
        return File.Exists(root) ? VerifierKey.Parse(File.ReadAllText(root).Trim()) : null;
    }

    private void Refuse(string file, string reason)
    {
        if (Adopted is { } current)
        {
            logger.LogError("The federation policy in {File} was refused; epoch {Epoch} ({Digest}) stays adopted: {Reason}", file, current.Epoch, current.Digest, reason);
        }
        else
        {
            logger.LogError("The federation policy in {File} was refused; none is adopted: {Reason}", file, reason);
            readiness.NotMet("federation policy", $"the federation policy in {file} was refused: {reason}");
        }
    }
}

/// <summary>
/// Takes federation bundles published on the bus — relayed by a member, or this domain's other Sync replicas — and adopts
/// a newer one (<see cref="FederationPolicyDistributor.Adopt"/>). One that fails the checks goes to the error queue with
/// the reason and changes nothing.
/// </summary>
public sealed class FederationPolicyConsumer(FederationPolicyDistributor distributor) : IConsumer<PolicyPublished>
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<PolicyPublished> context)
    {
        var m = context.Message;
        if (m.Scope != PolicyScope.Federation || distributor.Federation is not { } federation)
        {
            return Task.CompletedTask;
        }

        var what = $"federation policy epoch {m.Epoch} published by {m.Publisher ?? "an unnamed publisher"}";
        if (m.Domain != federation)
        {
            throw new MalformedMessageException(typeof(PolicyPublished), [$"{what} refused: it is the policy of '{m.Domain}', this domain is a member of '{federation}'"]);
        }

        try
        {
            distributor.Adopt(m.Bundle, m.Publisher ?? "the bus");
        }
        catch (Exception e) when (e is PolicyBundleException or PolicyRolloutException or FormatException)
        {
            throw new MalformedMessageException(typeof(PolicyPublished), [$"{what} refused: {e.Message}"]);
        }

        return Task.CompletedTask;
    }
}

/// <summary>
/// An endpoint of this process's own (temporary, removed with it), not a competing queue: every Sync replica announces the
/// federation digest in its heartbeats, so every replica must adopt every bundle.
/// </summary>
public sealed class FederationPolicyConsumerDefinition : ConsumerDefinition<FederationPolicyConsumer>
{
    /// <summary>Names the endpoint after this process instance.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public FederationPolicyConsumerDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        Endpoint(e =>
        {
            e.Name = MeshBusEndpointNameFormatter.Name(names, "sync-federation-policy-" + Guid.NewGuid().ToString("N")[..12]);
            e.Temporary = true;
            e.ConcurrentMessageLimit = 1;
        });
    }
}
