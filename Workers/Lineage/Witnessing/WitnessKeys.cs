using MeshBus.Ledger;
using MeshBus.Trust;

namespace MeshBus.Workers.Lineage.Witnessing;

/// <summary>
/// The keys witnessing needs: this domain's <see cref="KeyUsage.Witness"/> key (cosigns peers' checkpoints) and the
/// trust config (the peers pinned in <c>trust/</c> with their key sets: their log keys verify their checkpoints, their
/// witness keys verify the cosignatures of this domain's checkpoints). Loaded on first use and kept; a failure is not
/// cached (the next message tries again). A key rotation takes a restart of the Lineage worker, as the log key does.
/// </summary>
public sealed class WitnessKeys
{
    private readonly Func<(TrustConfig Trust, Func<ISigner> Witness)> _load;
    private readonly Lock _gate = new();
    private (TrustConfig Trust, Func<ISigner> Witness)? _loaded;

    /// <summary>This domain's current log key (signs the checkpoints an evidence bundle is proven against), when loaded.</summary>
    public Func<ISigner>? LogKey { get; init; }

    /// <summary>Creates the keys of <paramref name="domain"/> from <paramref name="load"/>.</summary>
    /// <param name="domain">This domain.</param>
    /// <param name="load">Returns the trust config and the current witness signer.</param>
    public WitnessKeys(string domain, Func<(TrustConfig Trust, Func<ISigner> Witness)> load)
    {
        Domain = domain;
        _load = load;
    }

    /// <summary>This domain.</summary>
    public string Domain { get; }

    /// <summary>The keys of a domain directory: its trust config and its current witness key.</summary>
    public static WitnessKeys FromDirectory(string domain, string directory, TimeProvider clock)
    {
        DomainKeys? keys = null;
        DomainKeys Keys() => keys ??= DomainKeys.Load(directory, KeyUsage.Witness, KeyUsage.Log);
        return new(domain, () => (Keys().LoadTrust(), () => Keys().Signer(KeyUsage.Witness, clock.GetUtcNow())))
        {
            LogKey = () => Keys().Signer(KeyUsage.Log, clock.GetUtcNow()),
        };
    }

    /// <summary>The trust config: pinned roots and accepted key sets (this domain's own included).</summary>
    public TrustConfig Trust => Loaded().Trust;

    /// <summary>The pinned peers (every pinned root but this domain's).</summary>
    public IReadOnlyList<string> Peers => [.. Loaded().Trust.PinnedRoots.Keys.Where(d => d != Domain).Order(StringComparer.Ordinal)];

    /// <summary>This domain's witness key, as the cosignature signer of the name <c>&lt;domain&gt;/witness</c>.</summary>
    public ISigner WitnessSigner() => Loaded().Witness();

    /// <summary>The note verifier keys of <paramref name="domain"/>'s log (<c>&lt;domain&gt;/lineage</c>), from its accepted key set.</summary>
    public IReadOnlyList<VerifierKey> LogKeysOf(string domain) =>
        [.. KeysOf(domain, KeyUsage.Log).Select(pk => VerifierKey.Create(LineageNames.Origin(domain), pk))];

    /// <summary>The cosignature verifier keys of <paramref name="domain"/>'s witness (<c>&lt;domain&gt;/witness</c>, type 0x04).</summary>
    public IReadOnlyList<VerifierKey> WitnessKeysOf(string domain) =>
        [.. KeysOf(domain, KeyUsage.Witness).Select(pk => VerifierKey.Create(LineageNames.Witness(domain), pk, VerifierKey.CosignatureType))];

    private IEnumerable<byte[]> KeysOf(string domain, KeyUsage usage)
    {
        var trust = Loaded().Trust;
        var set = domain == Domain ? trust.OwnKeySet : trust.PeerKeySets.GetValueOrDefault(domain);
        return set is null ? [] : set.Keys.Where(k => k.Usage == usage && !set.Revoked.Contains(k.KeyId, StringComparer.Ordinal)).Select(k => k.PublicKeyBytes());
    }

    private (TrustConfig Trust, Func<ISigner> Witness) Loaded()
    {
        lock (_gate)
        {
            _loaded ??= _load();
            return _loaded.Value;
        }
    }
}
