using System.Text.RegularExpressions;

namespace MeshBus.Persistence;

/// <summary>
/// Where durable state lives (<c>Storage:Provider</c>): the one provider choice of every store, sagas, schedules,
/// the lineage log and the workers' own tables.
/// </summary>
public enum StorageProvider
{
    /// <summary>Embedded SQLite files under the data directory (one process).</summary>
    Sqlite,

    /// <summary>PostgreSQL, shared by the replicas of a fleet.</summary>
    Postgres,
}

/// <summary>
/// Where durable state lives: the saga repository and the Quartz job store both take one of these.
/// Derived from the <c>Storage</c> section by the hosting (<c>MeshBusStorage.SqlStore</c>).
/// </summary>
public sealed partial class SqlStoreOptions
{
    /// <summary>The configuration section this class binds to.</summary>
    public const string SectionName = "SqlStore";

    /// <summary>Which engine <see cref="ConnectionString"/> points at.</summary>
    public StorageProvider Provider { get; set; } = StorageProvider.Sqlite;

    /// <summary>An ADO.NET connection string for <see cref="Provider"/> (Npgsql or Microsoft.Data.Sqlite syntax).</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>The table holding one row per saga instance.</summary>
    public string SagaTable { get; set; } = "saga_state";

    /// <summary>The table holding the index rows sagas write beside their state (see <see cref="IIndexedSaga"/>).</summary>
    public string SagaIndexTable { get; set; } = "saga_index";

    /// <summary>The prefix of Quartz's tables; <c>null</c> keeps Quartz's default (<c>QRTZ_</c>).</summary>
    public string? QuartzTablePrefix { get; set; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Provider))
        {
            throw new ArgumentException($"{SectionName}:{nameof(Provider)} '{Provider}' is not a supported provider (Sqlite or Postgres).");
        }

        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ArgumentException($"{SectionName}:{nameof(ConnectionString)} is empty.");
        }

        CheckIdentifier(nameof(SagaTable), SagaTable);
        CheckIdentifier(nameof(SagaIndexTable), SagaIndexTable);
        if (QuartzTablePrefix is not null)
        {
            CheckIdentifier(nameof(QuartzTablePrefix), QuartzTablePrefix);
        }
    }

    // Table names are spliced into SQL text, so only plain identifiers are accepted.
    private static void CheckIdentifier(string name, string value)
    {
        if (value is null || !Identifier().IsMatch(value))
        {
            throw new ArgumentException(
                $"{SectionName}:{name} '{value}' is not a plain SQL identifier (letters, digits and '_', starting with a letter or '_', at most 48 characters).");
        }
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,47}$")]
    private static partial Regex Identifier();
}
