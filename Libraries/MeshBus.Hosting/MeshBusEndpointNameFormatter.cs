using MassTransit;

namespace MeshBus.Hosting;

/// <summary>
/// Kebab-case endpoint names under <see cref="RabbitMqTransportOptions.EntityPrefix"/> (empty: MassTransit's kebab-case
/// names unchanged). Registered as a singleton; consumer and saga definitions that name their endpoint explicitly
/// take it (optionally) and call <see cref="Name(string)"/> so their queues carry the prefix too.
/// </summary>
public sealed class MeshBusEndpointNameFormatter : KebabCaseEndpointNameFormatter
{
    /// <summary>Creates the formatter.</summary>
    /// <param name="prefix">The entity prefix; empty for none.</param>
    public MeshBusEndpointNameFormatter(string prefix)
        : base(prefix, false) => EntityPrefix = prefix;

    /// <summary>The entity prefix (empty for none).</summary>
    public string EntityPrefix { get; }

    /// <summary>An explicitly chosen endpoint name under the prefix.</summary>
    /// <param name="name">The endpoint name without prefix (e.g. <c>authorize-intents</c>).</param>
    public string Name(string name) => EntityPrefix + name;

    /// <summary>An explicitly chosen endpoint name under the prefix of <paramref name="formatter"/>, if any.</summary>
    /// <param name="formatter">The registered formatter, or <see langword="null"/> outside <c>AddMeshBus</c>.</param>
    /// <param name="name">The endpoint name without prefix.</param>
    public static string Name(MeshBusEndpointNameFormatter? formatter, string name) => formatter is null ? name : formatter.Name(name);
}
