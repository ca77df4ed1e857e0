using MeshBus.Ledger;

namespace MeshBus.Cli.Commands.Lineage;

/// <summary>The <c>--store PATH | --postgres CS</c> options shared by the lineage and proof commands.</summary>
internal static class LineageStoreOptions
{
    public const string Usage = "  --store PATH        the domain's SQLite lineage store (embedded mode)\n  --postgres CS       or: the PostgreSQL connection string of the domain's lineage database";

    public static async Task<SqlLineageLog> OpenAsync(CliArgs args, CancellationToken ct)
    {
        var path = args.Option("store");
        var cs = args.Option("postgres");
        if ((path is null) == (cs is null))
        {
            throw new CliUsageException("give exactly one of --store PATH or --postgres CONNECTION-STRING");
        }

        if (path is not null)
        {
            if (!File.Exists(path))
            {
                throw new CliUsageException($"no lineage store at '{path}'");
            }

            return LineageLogs.OpenSqlite(path);
        }

        return await LineageLogs.OpenPostgresAsync(cs!, cancellationToken: ct);
    }
}
