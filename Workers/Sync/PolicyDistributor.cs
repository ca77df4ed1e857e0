using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
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
/// bundle's own signature) and <see cref="PolicySynced"/> (signed with the envelope key). It is published again on every heartbeat interval, so a replica that starts later loads it
/// too (Authorize treats the same epoch and digest as already current).
/// </summary>
public sealed class PolicyDistributor(
    IBus bus,
    IAppliedGovernance governance,
    GovernanceSigner signer,
    IOptions<MeshBusOptions> mesh,
    IOptions<SyncOptions> options,
    TimeProvider clock,
    ILogger<PolicyDistributor> logger) : BackgroundService
{
    private string? _bundle;
    private MeshBus.Policy.PolicyVersion? _version;

    /// <summary>Loads, verifies and applies the configured bundle; returns the applied version, or null without a file.</summary>
    /// <exception cref="PolicyBundleException">The bundle is tampered, unsigned by the domain, or a rule does not compile.</exception>
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
        if (governance.Apply(PolicyScope.Domain, version.Epoch, version.Digest))
        {
            logger.LogInformation("Applied the domain policy {Digest} at epoch {Epoch} from {File}", version.Digest, version.Epoch, file);
        }

        _bundle = json;
        _version = version;
        return version;
    }

    /// <summary>Publishes the applied bundle and the domain's acknowledgement of it.</summary>
    public async Task PublishAsync(CancellationToken cancellationToken)
    {
        if (_bundle is null || _version is null)
        {
            return;
        }

        var now = clock.GetUtcNow();
        var domain = mesh.Value.Domain;
        await bus.Publish(new PolicyPublished(domain, PolicyScope.Domain, _version.Epoch, _version.Digest, _bundle, now), cancellationToken);
        await bus.Publish(signer.Sign(new PolicySynced(domain, domain, PolicyScope.Domain, _version.Epoch, _version.Digest, now)), cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            Apply();
        }
        catch (Exception e) when (e is PolicyBundleException or IOException or KeySetException or UnauthorizedAccessException)
        {
            // Fail closed: nothing is applied, so heartbeats keep announcing the old epoch and Authorize refuses
            // decisions against a policy the domain has not applied.
            logger.LogError(e, "The domain policy in {File} was refused; no policy is applied", options.Value.PolicyBundleFile);
            return;
        }

        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, clock);
        do
        {
            try
            {
                await PublishAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Publishing the domain policy failed; retrying on the next interval");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
