using System.Collections.Immutable;
using MeshBus.Contracts;

namespace MeshBus.Trust;

/// <summary>
/// A domain's trust: its own key set plus the peers the operator pinned (name → root verifier key). A peer's key set
/// is accepted only when signed by that peer's pinned root, for that peer's own name, not expired and with a
/// sequence not lower than the last accepted one. Trust is never transitive: a key set never vouches for another
/// domain. Thread-safe: resolution reads an immutable snapshot while the Sync worker accepts new key sets.
/// </summary>
public sealed class TrustConfig : IKeyResolver
{
    private readonly object _gate = new();
    private volatile ImmutableDictionary<string, KeySet> _accepted = ImmutableDictionary.Create<string, KeySet>(StringComparer.Ordinal);
    private volatile KeySet? _own;

    /// <summary>Creates a trust config from pinned roots (name → root verifier key) and, optionally, the own key set.</summary>
    public TrustConfig(IEnumerable<VerifierKey> pinnedRoots, KeySet? ownKeySet = null)
    {
        ArgumentNullException.ThrowIfNull(pinnedRoots);
        var roots = ImmutableDictionary.CreateBuilder<string, VerifierKey>(StringComparer.Ordinal);
        foreach (var root in pinnedRoots)
        {
            if (root.SignatureType != VerifierKey.Ed25519Type)
            {
                throw new ArgumentException($"root key of {root.Name} must be an Ed25519 (type 0x01) verifier key");
            }

            if (roots.TryGetValue(root.Name, out var existing) && !existing.Equals(root))
            {
                throw new ArgumentException($"two different root keys pinned for {root.Name}");
            }

            roots[root.Name] = root;
        }

        PinnedRoots = roots.ToImmutable();
        _own = ownKeySet;
    }

    /// <summary>The pinned roots by domain name.</summary>
    public IReadOnlyDictionary<string, VerifierKey> PinnedRoots { get; }

    /// <summary>The own domain's key set, if set.</summary>
    public KeySet? OwnKeySet => _own;

    /// <summary>Every accepted peer key set by domain.</summary>
    public IReadOnlyDictionary<string, KeySet> PeerKeySets => _accepted;

    /// <summary>
    /// Loads a trust directory: every <c>*.vkey</c> file is a pinned root (one verifier key line, name = domain), every
    /// <c>*.keyset.json</c> a signed key set, accepted against its pinned root (signature and sequence; expiry is
    /// checked at resolution time, so an auditor can still verify historical artifacts). This is the layout written
    /// by <c>meshbus trust export --out</c> and <c>meshbus trust add</c>.
    /// </summary>
    public static TrustConfig LoadDirectory(string directory, KeySet? ownKeySet = null)
    {
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"trust directory '{directory}' does not exist");
        }

        var roots = new List<VerifierKey>();
        foreach (var file in Directory.EnumerateFiles(directory, "*.vkey").Order(StringComparer.Ordinal))
        {
            try
            {
                roots.Add(VerifierKey.Parse(File.ReadAllText(file)));
            }
            catch (FormatException e)
            {
                throw new FormatException($"{file}: {e.Message}", e);
            }
        }

        var config = new TrustConfig(roots, ownKeySet);
        foreach (var file in Directory.EnumerateFiles(directory, "*.keyset.json").Order(StringComparer.Ordinal))
        {
            var result = config.AcceptKeySet(File.ReadAllText(file), now: null);
            if (!result.IsValid)
            {
                throw new KeySetException(result.Reason, $"{file}: {result.Detail}");
            }
        }

        return config;
    }

    /// <summary>Replaces the own key set (after a local rotation).</summary>
    public void SetOwnKeySet(KeySet keySet) => _own = keySet;

    /// <summary>
    /// Accepts a signed key set for a pinned domain (the own domain included, when pinned). Fails with
    /// <see cref="GovernanceReason.UnknownDomain"/> (not pinned), <see cref="GovernanceReason.SignatureInvalid"/>
    /// (not signed by the pinned root, or a different set with the same sequence), <see cref="GovernanceReason.SyncStale"/>
    /// (expired at <paramref name="now"/>; skipped when null), <see cref="GovernanceReason.ReplayDetected"/>
    /// (sequence lower than the last accepted) or <see cref="GovernanceReason.MalformedInput"/>.
    /// </summary>
    public VerificationResult<KeySet> AcceptKeySet(string signedJson, DateTimeOffset? now)
    {
        string domain;
        try
        {
            domain = KeySet.PeekDomain(signedJson);
        }
        catch (KeySetException e)
        {
            return VerificationResult<KeySet>.Fail(e.Reason, e.Message);
        }

        if (!PinnedRoots.TryGetValue(domain, out var root))
        {
            return VerificationResult<KeySet>.Fail(GovernanceReason.UnknownDomain, $"no root pinned for '{domain}'");
        }

        KeySet set;
        try
        {
            set = KeySet.Verify(signedJson, root.PublicKey);
        }
        catch (KeySetException e)
        {
            return VerificationResult<KeySet>.Fail(e.Reason, e.Message);
        }

        if (now is { } t && t > set.ExpiresAt)
        {
            return VerificationResult<KeySet>.Fail(GovernanceReason.SyncStale, $"key set {set.Sequence} of {domain} expired at {set.ExpiresAt:O}");
        }

        lock (_gate)
        {
            if (_accepted.TryGetValue(domain, out var last))
            {
                if (set.Sequence < last.Sequence)
                {
                    return VerificationResult<KeySet>.Fail(GovernanceReason.ReplayDetected, $"key set {set.Sequence} of {domain} is older than the accepted {last.Sequence}");
                }

                if (set.Sequence == last.Sequence && !SameContent(set, last))
                {
                    return VerificationResult<KeySet>.Fail(GovernanceReason.SignatureInvalid, $"a different key set with the accepted sequence {set.Sequence} of {domain}");
                }
            }

            _accepted = _accepted.SetItem(domain, set);
        }

        return VerificationResult<KeySet>.Ok(set);
    }

    /// <inheritdoc/>
    public KeyResolution Resolve(string domain, string keyId, KeyUsage usage, DateTimeOffset at)
    {
        var own = _own;
        if (own is not null && string.Equals(own.Domain, domain, StringComparison.Ordinal))
        {
            return own.Resolve(domain, keyId, usage, at);
        }

        if (_accepted.TryGetValue(domain, out var set))
        {
            return set.Resolve(domain, keyId, usage, at);
        }

        return PinnedRoots.ContainsKey(domain)
            ? KeyResolution.Fail(GovernanceReason.SyncStale, $"no key set accepted yet for pinned domain '{domain}'")
            : KeyResolution.Fail(GovernanceReason.UnknownDomain, $"domain '{domain}' is not in the trust config");
    }

    private static bool SameContent(KeySet a, KeySet b) =>
        System.Text.Json.Nodes.JsonNode.DeepEquals(a.ToJson(), b.ToJson());
}
