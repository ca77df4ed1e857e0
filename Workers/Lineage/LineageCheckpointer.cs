using System.Globalization;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Ledger;
using MeshBus.Trust;
using MeshBus.Trust.Notes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Lineage;

/// <summary>The <c>Lineage</c> section: when the worker signs checkpoints of the domain's log.</summary>
public sealed class LineageOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "Lineage";

    /// <summary>A checkpoint is due once this many entries were appended since the last one.</summary>
    public int CheckpointEveryEntries { get; set; } = 1000;

    /// <summary>A checkpoint is due once this much time passed since the last one and the log grew.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the worker looks whether a checkpoint is due (bounds how late the entries rule acts).</summary>
    public TimeSpan CheckpointCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long an answer to a peer's <c>ProofRequest</c> waits for that peer's witness to cosign the checkpoint it is proven against.</summary>
    public TimeSpan ProofCosignWait { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Checks the <c>Lineage</c> section on start, naming the setting and its environment variable.</summary>
internal sealed class LineageOptionsValidator : IValidateOptions<LineageOptions>
{
    public ValidateOptionsResult Validate(string? name, LineageOptions options)
    {
        var errors = new List<string>();
        if (options.CheckpointEveryEntries < 1)
        {
            errors.Add("Lineage:CheckpointEveryEntries must be at least 1 (environment variable Lineage__CheckpointEveryEntries)");
        }

        if (options.CheckpointInterval <= TimeSpan.Zero)
        {
            errors.Add("Lineage:CheckpointInterval must be a positive duration like 00:00:10 (environment variable Lineage__CheckpointInterval)");
        }

        if (options.CheckpointCheckInterval <= TimeSpan.Zero)
        {
            errors.Add("Lineage:CheckpointCheckInterval must be a positive duration like 00:00:01 (environment variable Lineage__CheckpointCheckInterval)");
        }

        if (options.ProofCosignWait < TimeSpan.Zero || options.ProofCosignWait > TimeSpan.FromMinutes(1))
        {
            errors.Add("Lineage:ProofCosignWait must be a duration from 00:00:00 to 00:01:00 (environment variable Lineage__ProofCosignWait)");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Signs C2SP checkpoints of the domain's lineage log with the domain's log key every N entries or T time
/// (<see cref="LineageOptions"/>) and publishes <see cref="CheckpointPublished"/> for each. Every replica runs it: the
/// store keeps one checkpoint per size (the first stored wins) and Ed25519 is deterministic, so replicas never leave two
/// different checkpoints of one size; only the replica that stored one publishes it.
/// </summary>
public sealed class LineageCheckpointer(
    ILineageLog log,
    IBus bus,
    IOptions<MeshBusOptions> mesh,
    IOptions<LineageOptions> options,
    WorkerReadiness readiness,
    TimeProvider clock,
    ILogger<LineageCheckpointer> logger) : BackgroundService
{
    private CheckpointPublisher? _publisher;

    /// <summary>Signs, stores and publishes a checkpoint when one is due; returns it, or null.</summary>
    public async Task<StoredCheckpoint?> PublishIfDueAsync(CancellationToken cancellationToken)
    {
        var publisher = _publisher ??= CreatePublisher();
        if (publisher is null)
        {
            return null;
        }

        var checkpoint = await publisher.PublishIfDueAsync(cancellationToken);
        if (checkpoint is not null)
        {
            await bus.Publish(
                new CheckpointPublished(mesh.Value.Domain, publisher.Origin, checkpoint.Size, Convert.ToBase64String(checkpoint.RootHash), checkpoint.Note, checkpoint.CreatedAt),
                cancellationToken);
            logger.LogInformation("Checkpoint of {Origin} at size {Size}", publisher.Origin, checkpoint.Size.ToString(CultureInfo.InvariantCulture));
        }

        return checkpoint;
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PublishIfDueAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Checkpointing the lineage log failed; trying again: {Reason}", e.Message);
            }

            try
            {
                await Task.Delay(options.Value.CheckpointCheckInterval, clock, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private CheckpointPublisher? CreatePublisher()
    {
        if (log is not ICheckpointStore store)
        {
            return null;
        }

        var directory = mesh.Value.ResolvedKeyDirectory;
        try
        {
            // The log key is loaded once: a rotation takes a restart of the Lineage worker (docs/operations.md).
            var keys = DomainKeys.Load(directory, KeyUsage.Log);
            var signer = new Ed25519NoteSigner(LineageNames.Origin(mesh.Value.Domain), keys.Signer(KeyUsage.Log, clock.GetUtcNow()));
            readiness.Met("log key");
            var o = options.Value;
            return new CheckpointPublisher(log, store, signer, new CheckpointPolicy { EveryEntries = o.CheckpointEveryEntries, EveryInterval = o.CheckpointInterval }, clock);
        }
        catch (Exception e) when (e is IOException or KeyFileException or KeySetException or UnauthorizedAccessException or InvalidOperationException or FormatException)
        {
            readiness.NotMet("log key", $"cannot load the log key from {Path.GetFullPath(directory)} (MeshBus__KeyDirectory), no checkpoints are signed: {e.Message}");
            return null;
        }
    }
}
