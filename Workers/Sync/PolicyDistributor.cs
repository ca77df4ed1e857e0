using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Persistence;
using MeshBus.Policy;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync;

/// <summary>
/// Applies the domain's signed policy bundle (<c>Sync:PolicyBundleFile</c>) and distributes it: the bundle is verified
/// against the domain's key set and compiled (a bundle that would not load in Authorize is never applied), recorded as
/// applied (heartbeats then announce its epoch), and published as <see cref="PolicyPublished"/> (whose authority is the
/// bundle's own signature) and <see cref="PolicySynced"/> (signed with the envelope key), the acknowledgement, only once
/// every Authorize replica that reported within <see cref="SyncOptions.ReplicaLiveness"/> has loaded the epoch
/// (<see cref="IReplicaLoadStore"/>; none reporting means none loaded it, so no acknowledgement). It is published again on
/// every heartbeat interval, so a replica that starts later loads it too (Authorize treats the same epoch and digest as
/// already current) and the acknowledgement follows as soon as the last replica reports it. On every interval the file is read again: a
/// replaced file with a higher epoch is rolled out without a restart; anything else leaves the applied policy alone.
/// </summary>
public sealed class PolicyDistributor(
    IBus bus,
    IAppliedGovernance governance,
    GovernanceSigner signer,
    IOptions<MeshBusOptions> mesh,
    IOptions<SyncOptions> options,
    TimeProvider clock,
    WorkerReadiness readiness,
    IReplicaLoadStore replicas,
    ILogger<PolicyDistributor> logger) : BackgroundService
{
    private string? _bundle;
    private MeshBus.Policy.PolicyVersion? _version;
    private string? _refused;

    /// <summary>The applied bundle's version, or null while none is.</summary>
    public MeshBus.Policy.PolicyVersion? Applied => _version;

    /// <summary>
    /// Loads, verifies and applies the configured bundle; returns the applied version, or null without a file. The
    /// same bundle again changes nothing; a different one must carry a higher epoch (a rollout), so replicas reading
    /// the file at different moments never announce two digests for one epoch.
    /// </summary>
    /// <exception cref="PolicyBundleException">The bundle is tampered, unsigned by the domain, or a rule does not compile.</exception>
    /// <exception cref="PolicyRolloutException">The bundle differs from the applied one without a higher epoch.</exception>
    public MeshBus.Policy.PolicyVersion? Apply()
    {
        var file = options.Value.PolicyBundleFile;
        if (string.IsNullOrWhiteSpace(file))
        {
            return null;
        }

        var json = File.ReadAllText(file);
        var domain = mesh.Value.Domain;
        var trust = DomainKeys.Load(mesh.Value.ResolvedKeyDirectory).LoadTrust();
        var now = clock.GetUtcNow();
        var signers = PolicySigners.DomainGrantKeys(trust, domain, now);
        var loaded = new PolicyStore().Load(json, signers, PolicyScope.Domain, domain);
        var version = loaded.Policy.Version;
        if (_version is { } current)
        {
            if (current.Epoch == version.Epoch && current.Digest == version.Digest)
            {
                return current;
            }

            if (version.Epoch <= current.Epoch)
            {
                throw new PolicyRolloutException(
                    $"the bundle in {file} (epoch {version.Epoch}, {version.Digest}) is not newer than the applied epoch {current.Epoch} ({current.Digest}); a changed policy needs a higher epoch");
            }
        }

        if (governance.Apply(PolicyScope.Domain, version.Epoch, version.Digest))
        {
            logger.LogInformation("Applied the domain policy {Digest} at epoch {Epoch} from {File}", version.Digest, version.Epoch, file);
        }

        _bundle = json;
        _version = version;
        _refused = null;
        readiness.Met("policy");
        return version;
    }

    /// <summary>
    /// Applies the file again when its content changed since it was last applied or refused (the rollout: replace the
    /// file, every replica picks it up within one heartbeat interval). Returns whether a new version was applied.
    /// </summary>
    public bool ApplyIfChanged()
    {
        var file = options.Value.PolicyBundleFile;
        if (string.IsNullOrWhiteSpace(file))
        {
            return false;
        }

        string content;
        try
        {
            content = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Refuse(file, "cannot read it: " + e.Message);
            return false;
        }

        if (content == _bundle || content == _refused)
        {
            return false;
        }

        var before = _version;
        try
        {
            Apply();
            return !Equals(before, _version);
        }
        catch (Exception e) when (e is PolicyBundleException or PolicyRolloutException or IOException or KeySetException or UnauthorizedAccessException)
        {
            // Fail closed: the applied policy (if any) stays; heartbeats keep announcing its epoch.
            _refused = content;
            Refuse(file, e.Message);
            return false;
        }
    }

    private void Refuse(string file, string reason)
    {
        if (_version is { } current)
        {
            logger.LogError("The domain policy in {File} was refused; epoch {Epoch} ({Digest}) stays applied: {Reason}", file, current.Epoch, current.Digest, reason);
        }
        else
        {
            logger.LogError("The domain policy in {File} was refused; no policy is applied: {Reason}", file, reason);
            readiness.NotMet("policy", $"the domain policy in {file} was refused: {reason}");
        }
    }

    /// <summary>
    /// Publishes the applied bundle, and the domain's acknowledgement of it when every live Authorize replica has loaded
    /// it; returns whether the acknowledgement was sent.
    /// </summary>
    public async Task<bool> PublishAsync(CancellationToken cancellationToken)
    {
        if (_bundle is null || _version is null)
        {
            return false;
        }

        var now = clock.GetUtcNow();
        var domain = mesh.Value.Domain;
        var version = _version;
        await bus.Publish(new PolicyPublished(domain, PolicyScope.Domain, version.Epoch, version.Digest, _bundle, now), cancellationToken);
        var live = await replicas.LiveAsync(now - options.Value.ReplicaLiveness, cancellationToken);
        var behind = live.Where(r => r.DomainPolicyEpoch < version.Epoch).ToList();
        if (live.Count == 0 || behind.Count > 0)
        {
            logger.LogDebug("Epoch {Epoch} not acknowledged yet: {Detail}", version.Epoch, live.Count == 0
                ? "no Authorize replica reported within " + options.Value.ReplicaLiveness
                : string.Join(", ", behind.Select(r => $"{r.Replica} has epoch {r.DomainPolicyEpoch}")));
            return false;
        }

        await bus.Publish(signer.Sign(new PolicySynced(domain, domain, PolicyScope.Domain, version.Epoch, version.Digest, now)), cancellationToken);
        return true;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, clock);
        do
        {
            ApplyIfChanged();
            try
            {
                await PublishAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Publishing the domain policy failed; retrying on the next interval: {Reason}", e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}

/// <summary>A policy file that differs from the applied bundle without a higher epoch.</summary>
public sealed class PolicyRolloutException(string message) : Exception(message);
