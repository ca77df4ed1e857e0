using MeshBus.Cli.Commands.Lineage;
using MeshBus.Ledger;
using MeshBus.Ledger.Evidence;
using MeshBus.Trust;
using MeshBus.Trust.Notes;

namespace MeshBus.Cli.Commands.Proof;

/// <summary><c>meshbus proof export</c>: writes the <c>meshbus-evidence/v1</c> bundle of an intent.</summary>
public sealed class ProofExportCommand : CliCommand
{
    /// <inheritdoc/>
    public override string Name => "proof export";

    /// <inheritdoc/>
    public override string Summary => "Write the evidence bundle (meshbus-evidence/v1) of an intent";

    /// <inheritdoc/>
    public override string Usage => $"""
        Usage: meshbus proof export --intent ID --out FILE (--store PATH | --postgres CS) --domain-dir DIR [--grant FILE]
                                    [--peer DOMAIN[,DOMAIN...] [--rabbitmq amqp://USER:PASS@HOST:PORT/VHOST] [--wait SECONDS]]
          --intent ID         the intent id
          --out FILE          where to write the bundle (- for standard output)
        {LineageStoreOptions.Usage}
          --domain-dir DIR    the domain directory (meshbus keys init): its log key signs a covering checkpoint when
                              needed; its key set gives the JWKS, its pinned peers the witness keys
          --grant FILE        the grant JWS (default: rebuilt from the intent's decision record with the domain's
                              grant key of that time, when its private half is in DIR)
          --peer DOMAINS      ask these peers, over the bridge, for their part (ProofRequest on the domain's broker:
                              --rabbitmq or RabbitMqTransport__*); the Lineage worker verifies and records each answer
                              and the bundle nests it under "peers". Waits up to --wait seconds (default 30) for them.
        Parts received from peers earlier are always nested.
        """;

    /// <inheritdoc/>
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var intent = args.Required("intent");
        var output = args.Required("out");
        var dir = args.Required("domain-dir");
        var grantFile = args.Option("grant");
        var peers = (args.Option("peer") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var rabbit = args.Option("rabbitmq");
        var wait = TimeSpan.FromSeconds(args.Int("wait", 30));
        await using var log = await LineageStoreOptions.OpenAsync(args, cancellationToken);
        args.RejectUnknown();
        if (wait < TimeSpan.Zero || wait > TimeSpan.FromMinutes(10))
        {
            throw new CliUsageException("--wait is from 0 to 600 seconds");
        }

        if (peers.Length > 0 && !await AskPeersAsync(log, dir, intent, peers, rabbit, wait, console, cancellationToken))
        {
            return 1;
        }

        var now = DateTimeOffset.UtcNow;
        var keys = DomainKeys.Load(dir, KeyUsage.Log, KeyUsage.Grant);
        var origin = LineageNames.Origin(keys.Domain);
        var signer = new Ed25519NoteSigner(origin, keys.Signer(KeyUsage.Log, now));
        var publisher = new CheckpointPublisher(log, log, signer);
        var trust = keys.LoadTrust();
        var witnesses = trust.PeerKeySets.Values
            .SelectMany(s => s.Keys.Where(k => k.Usage == KeyUsage.Witness).Select(k => VerifierKey.Create(LineageNames.Witness(s.Domain), k.PublicKeyBytes(), VerifierKey.CosignatureType)))
            .ToList();
        var grant = grantFile is null ? null : (await File.ReadAllTextAsync(grantFile, cancellationToken)).Trim();
        var bundle = await EvidenceExporter.ExportAsync(log, publisher, signer.VerifierKey, intent, witnesses, Jwks.FromKeySet(keys.KeySet, now), grant, at => GrantSignerAt(keys, at), cancellationToken);
        var json = bundle.ToJson();
        if (output == "-")
        {
            await console.Out.WriteAsync(json);
        }
        else
        {
            await File.WriteAllTextAsync(output, json, cancellationToken);
            console.Out.WriteLine($"wrote {output}: {bundle.Records.Count} record(s) of intent {intent}, grant {(bundle.Grant is null ? "none" : "included")}");
        }

        return 0;
    }

    /// <summary>
    /// Publishes a <c>ProofRequest</c> to each peer on this domain's bus (the bridge carries it) and waits until the
    /// Lineage worker has recorded each answer in the log. False (with one line) when the broker did not confirm or a
    /// part did not arrive within <paramref name="wait"/>.
    /// </summary>
    private static async Task<bool> AskPeersAsync(SqlLineageLog log, string dir, string intent, string[] peers, string? rabbit, TimeSpan wait, CliConsole console, CancellationToken cancellationToken)
    {
        if (!Guid.TryParse(intent, out var intentId))
        {
            throw new CliUsageException($"--intent needs an intent id (a UUID) to ask peers, got '{intent}'");
        }

        var domain = DomainKeys.Load(dir).Domain;
        var before = (await log.FindAsync(intent, cancellationToken)).Where(r => r.Type == PeerEvidence.Type).Select(r => r.Index).ToHashSet();
        var broker = Halt.HaltCommand.Broker(rabbit, MeshBus.Hosting.MeshBusHost.BuildConfiguration([]));
        foreach (var peer in peers)
        {
            var request = new MeshBus.Contracts.ProofRequest(Guid.NewGuid(), peer, intentId) { Requester = domain };
            if (!await Halt.HaltCommand.PublishBoundedAsync(broker, request, "proof export", $"the proof request to {peer}", console, cancellationToken))
            {
                return false;
            }
        }

        var deadline = DateTimeOffset.UtcNow + wait;
        var missing = peers.ToHashSet(StringComparer.Ordinal);
        while (missing.Count > 0)
        {
            foreach (var r in (await log.FindAsync(intent, cancellationToken)).Where(r => r.Type == PeerEvidence.Type && !before.Contains(r.Index)))
            {
                missing.Remove(r.Key.Split(':') is { Length: 4 } parts ? parts[2] : "");
            }

            if (missing.Count == 0)
            {
                break;
            }

            if (DateTimeOffset.UtcNow >= deadline)
            {
                console.Error.WriteLine($"meshbus proof export: error: no evidence from {string.Join(", ", missing)} within {wait.TotalSeconds:0} s (is the bridge up? the peer's answer is refused to the Lineage worker's error queue if it does not verify)");
                return false;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        }

        return true;
    }

    /// <summary>The grant key that was current at <paramref name="at"/>; null when its private half is not in the directory.</summary>
    private static ISigner? GrantSignerAt(DomainKeys keys, DateTimeOffset at)
    {
        try
        {
            return keys.Signer(KeyUsage.Grant, at);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
