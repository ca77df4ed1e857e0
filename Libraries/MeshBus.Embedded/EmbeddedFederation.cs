using MeshBus.Federation;
using MeshBus.Trust;

namespace MeshBus.Embedded;

/// <summary>
/// Several domains in this process, each an <see cref="EmbeddedMesh"/> (its own in-memory bus, SQLite files and all
/// four workers), joined by one <see cref="InProcessFederationNetwork"/>: every domain's Sync hosts the same
/// <see cref="FederationBridge"/> and <see cref="RelayTable"/> as over NATS, so envelopes are sealed, checked and
/// relayed exactly as in a fleet. Trust is what each domain's key directory pins (<see cref="PinEachOther"/>).
/// </summary>
public sealed class EmbeddedFederation : IAsyncDisposable
{
    private readonly List<EmbeddedMesh> _domains;
    private readonly List<IFederationLink> _links;

    private EmbeddedFederation(InProcessFederationNetwork network, List<EmbeddedMesh> domains, List<IFederationLink> links)
    {
        Network = network;
        _domains = domains;
        _links = links;
    }

    /// <summary>The in-process network between the domains.</summary>
    public InProcessFederationNetwork Network { get; }

    /// <summary>The domains, in the order they were given.</summary>
    public IReadOnlyList<EmbeddedMesh> Domains => _domains;

    /// <summary>The domain named <paramref name="domain"/>.</summary>
    public EmbeddedMesh this[string domain] => _domains.FirstOrDefault(d => d.Domain == domain)
        ?? throw new KeyNotFoundException($"{domain} is not a domain of this federation");

    /// <summary>
    /// Pins every domain's root and stores its signed key set in every other domain's trust directory, as
    /// <c>meshbus trust add</c> on each side would (an operator's decision: call it only for domains meant to trust each
    /// other). Idempotent.
    /// </summary>
    public static void PinEachOther(IReadOnlyCollection<string> keyDirectories, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(keyDirectories);
        var domains = keyDirectories.Select(dir => (Dir: dir, Keys: DomainKeys.Load(dir, KeyUsage.Envelope))).ToList();
        foreach (var self in domains)
        {
            foreach (var peer in domains.Where(p => p.Keys.Domain != self.Keys.Domain))
            {
                TrustFiles.Pin(self.Dir, peer.Keys.Domain, peer.Keys.Root, replace: false);
                TrustFiles.StorePeerKeySet(self.Dir, peer.Keys.SignedKeySet, now);
            }
        }
    }

    /// <summary>
    /// Starts every domain on one new in-process network (each option's <see cref="EmbeddedMeshOptions.Federation"/> is
    /// replaced by it). The domains' key directories must pin each other already (<see cref="PinEachOther"/>); a domain
    /// that fails to start stops the ones already started and the error is thrown.
    /// </summary>
    public static Task<EmbeddedFederation> StartAsync(IReadOnlyCollection<EmbeddedMeshOptions> domains, CancellationToken cancellationToken = default) =>
        StartAsync(domains, linkFor: null, cancellationToken);

    /// <summary>
    /// As <see cref="StartAsync(IReadOnlyCollection{EmbeddedMeshOptions}, CancellationToken)"/>, with each domain's link
    /// from <paramref name="linkFor"/> (given the domain name; e.g. a <see cref="NatsFederationLink"/> as its NATS user)
    /// instead of the in-process network, when it is not null. Those links are disposed with the federation.
    /// </summary>
    public static async Task<EmbeddedFederation> StartAsync(IReadOnlyCollection<EmbeddedMeshOptions> domains, Func<string, IFederationLink>? linkFor,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(domains);
        if (domains.Count < 2 || domains.Select(d => d.Domain).Distinct(StringComparer.Ordinal).Count() != domains.Count)
        {
            throw new ArgumentException("a federation needs at least two domains with distinct names", nameof(domains));
        }

        var network = new InProcessFederationNetwork();
        var links = new List<IFederationLink>();
        var options = new List<EmbeddedMeshOptions>();
        foreach (var domain in domains)
        {
            var link = linkFor?.Invoke(domain.Domain);
            if (link is not null)
            {
                links.Add(link);
            }

            options.Add(domain with { Federation = link is null ? network : null, FederationLink = link });
        }

        // The domains start side by side (most of a start is schema creation and first-use JIT, which overlap well);
        // each waits for nothing from the others, as the bridge holds what arrives before a peer listens.
        var starting = options.Select(o => Task.Run(() => EmbeddedMesh.StartAsync(o, cancellationToken), cancellationToken)).ToList();
        try
        {
            await Task.WhenAll(starting);
        }
        catch
        {
            var some = starting.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result).ToList();
            await new EmbeddedFederation(network, some, links).DisposeAsync();
            throw;
        }

        var started = starting.Select(t => t.Result).ToList();
        return new EmbeddedFederation(network, started, links);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var mesh in Enumerable.Reverse(_domains))
        {
            await mesh.DisposeAsync();
        }

        foreach (var link in _links)
        {
            await link.DisposeAsync();
        }
    }
}
