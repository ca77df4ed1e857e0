using System.Globalization;
using System.Text.Json;
using MeshBus.Hosting;
using MeshBus.Persistence;
using Microsoft.Extensions.Configuration;

namespace MeshBus.Cli.Commands.Status;

/// <summary>
/// <c>meshbus status [--json]</c>: the domain as its store sees it — applied policy versions, key sets, peers, executions
/// by state, quarantined agents, lineage size and last checkpoint — without writing SQL. Reads the same settings as
/// the workers (<c>Storage__*</c>, <c>MeshBus__DataDirectory</c>, <c>MeshBus__Domain</c>, <c>MeshBus__KeyDirectory</c>),
/// so it can run beside any worker with its environment; options override them.
/// </summary>
public sealed class StatusCommand : CliCommand, IHasFlags
{
    /// <inheritdoc />
    public override string Name => "status";

    /// <inheritdoc />
    public override string Summary => "Show a domain's policy epochs, key sets, peers, executions, quarantines and lineage from its store";

    /// <inheritdoc />
    public override string Usage => """
        usage: meshbus status [--postgres CS | --data-dir DIR] [--domain DOMAIN] [--keys DIR] [--json]

        Reads the domain's store read-only: one PostgreSQL database (--postgres, or Storage__Provider=Postgres with
        Storage__ConnectionString) or the SQLite files of an embedded domain (--data-dir, or MeshBus__DataDirectory).
        --domain (or MeshBus__Domain) tells the own domain from its peers; --keys (or MeshBus__KeyDirectory) reads the
        own key-set sequence. --json writes one JSON object (fields are only ever added). Exit 0, or 2 when the store
        cannot be read (one line with the reason).
        """;

    /// <inheritdoc />
    public string[] Flags => ["json"];

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var settings = MeshBusHost.BuildConfiguration([]);
        var postgres = args.Option("postgres");
        var dataDir = args.Option("data-dir");
        var domain = args.Option("domain") ?? settings["MeshBus:Domain"] ?? "";
        var keys = args.Option("keys") ?? settings["MeshBus:KeyDirectory"];
        var json = args.Flag("json");
        args.RejectUnknown();
        if (postgres is not null && dataDir is not null)
        {
            throw new CliUsageException("give at most one of --postgres and --data-dir");
        }

        if (postgres is null && dataDir is null)
        {
            var storage = settings.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
            if (storage.Provider == StorageProvider.Postgres && !string.IsNullOrWhiteSpace(storage.ConnectionString))
            {
                postgres = storage.ConnectionString;
            }
            else
            {
                dataDir = settings["MeshBus:DataDirectory"] ?? throw new CliUsageException("no store: give --postgres CS or --data-dir DIR (or set Storage__ConnectionString or MeshBus__DataDirectory)");
            }
        }

        var status = await DomainStatusReader.ReadAsync(postgres, dataDir, domain, keys, cancellationToken);
        if (json)
        {
            await console.Out.WriteLineAsync(JsonSerializer.Serialize(status, DomainStatusReader.Json));
            return 0;
        }

        Print(status, console.Out);
        return 0;
    }

    private static void Print(DomainStatus s, TextWriter o)
    {
        var c = CultureInfo.InvariantCulture;
        o.WriteLine($"domain       {(s.Domain.Length == 0 ? "(not given: every domain in the store)" : s.Domain)}");
        o.WriteLine($"store        {s.Storage}");
        if (s.Policies.Count == 0)
        {
            o.WriteLine("policy       none published");
        }

        foreach (var p in s.Policies)
        {
            o.WriteLine(string.Create(c, $"policy       {p.Domain} {p.Scope} epoch {p.Epoch} {p.Digest} (published {p.PublishedAt:u})"));
            foreach (var a in p.AppliedBy)
            {
                o.WriteLine(string.Create(c, $"  applied by {a.Publisher}: epoch {a.Epoch}{(a.Epoch == p.Epoch ? "" : " (behind)")}"));
            }
        }

        if (s.KeySets.Count == 0)
        {
            o.WriteLine("key set      unknown (give --keys DIR)");
        }

        foreach (var k in s.KeySets)
        {
            o.WriteLine(string.Create(c, $"key set      {k.Domain} sequence {k.Sequence} (from {k.Source})"));
        }

        if (s.Peers.Count == 0)
        {
            o.WriteLine("peers        none known");
        }

        foreach (var peer in s.Peers)
        {
            var trust = peer.Trust is { } t ? $"trust {t.State}{(t.Reason is null ? "" : " (" + t.Reason + ")")} at {t.At.ToString("u", c)}" : "no trust event";
            var link = peer.Link is { } l
                ? string.Create(c, $"; link: sent #{l.LastSentSequence?.ToString(c) ?? "-"}, received up to #{l.ReceivedFloor?.ToString(c) ?? "-"}, last #{l.LastReceivedSequence?.ToString(c) ?? "-"} at {l.LastReceivedAt?.ToString("u", c) ?? "-"}")
                : "";
            var sync = peer.Sync is { } y
                ? string.Create(c, $"; heartbeat #{y.HeartbeatSequence} {y.HeartbeatAgeSeconds:0.0} s old, key set {y.KeySetSequence}, domain policy {y.DomainPolicyEpoch}, egress {y.EgressPolicyEpoch}{(y.Lapse is null ? "" : ", lapsed " + y.Lapse)}")
                : "";
            o.WriteLine($"peer         {peer.Domain}: {trust}{sync}{link}");
        }

        o.WriteLine("executions   " + (s.Executions.Count == 0 ? "none" : string.Join(", ", s.Executions.Select(e => string.Create(c, $"{e.Key} {e.Value}")))));
        o.WriteLine("quarantined  " + (s.Quarantined.Count == 0 ? "none" : string.Join(", ", s.Quarantined.Select(q => $"{q.Agent} (since {q.Since.ToString("u", c)})"))));
        o.WriteLine(string.Create(c, $"lineage      {s.Lineage.Size} entries, root {s.Lineage.RootHash}, ") +
            (s.Lineage.LastCheckpoint is { } cp
                ? string.Create(c, $"last checkpoint at size {cp.Size} ({cp.At:u}), ") + (cp.CosignedBy.Count == 0 ? "not cosigned" : "cosigned by " + string.Join(", ", cp.CosignedBy))
                : "no checkpoint yet"));
    }
}
