using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync;

/// <summary>
/// Key-set distribution, sending side: on every heartbeat interval the domain's current key set (<c>keyset.json</c> in
/// the key directory, as <c>meshbus keys rotate</c>/<c>revoke</c> write it) is verified against the domain's own root and
/// published as <see cref="KeySetPublished"/>, which the bridge carries to every peer. Re-reading the file each time
/// rolls out a rotation or a revocation without a restart; a file that does not verify is not published (logged).
/// </summary>
public sealed class KeySetPublisher(IBus bus, IOptions<MeshBusOptions> mesh, IOptions<SyncOptions> options, TimeProvider clock, ILogger<KeySetPublisher> logger)
    : BackgroundService
{
    /// <summary>Publishes the current key set now; false when the key directory holds none that verifies.</summary>
    public async Task<bool> PublishAsync(CancellationToken cancellationToken)
    {
        var dir = mesh.Value.ResolvedKeyDirectory;
        var file = Path.Combine(dir, "keyset.json");
        var rootFile = Path.Combine(dir, "root.vkey");
        if (!File.Exists(file) || !File.Exists(rootFile))
        {
            return false;
        }

        var json = await File.ReadAllTextAsync(file, cancellationToken);
        KeySet set;
        try
        {
            set = KeySet.Verify(json, VerifierKey.Parse((await File.ReadAllTextAsync(rootFile, cancellationToken)).Trim()).PublicKey);
        }
        catch (Exception e) when (e is KeySetException or FormatException)
        {
            logger.LogError("The key set in {File} does not verify against the domain's root and is not published: {Reason}", file, e.Message);
            return false;
        }

        await bus.Publish(new KeySetPublished(mesh.Value.Domain, set.Sequence, json, clock.GetUtcNow()), cancellationToken);
        return true;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.HeartbeatInterval, clock);
        do
        {
            try
            {
                await PublishAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Publishing the key set failed; retrying on the next interval");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
