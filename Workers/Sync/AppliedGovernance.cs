using System.Collections.Concurrent;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Sync;

/// <summary>What this domain has applied: its key set sequence and the policy epoch per scope. Heartbeats announce it.</summary>
public interface IAppliedGovernance
{
    /// <summary>The domain's current key set sequence (0 before one is loaded).</summary>
    long KeySetSequence { get; }

    /// <summary>The applied epoch of a policy scope (0 before one is applied).</summary>
    long Epoch(PolicyScope scope);

    /// <summary>The applied digest of a policy scope (empty before one is applied).</summary>
    string Digest(PolicyScope scope);

    /// <summary>Records an applied policy version; false when it is not newer than the applied one (epochs only grow).</summary>
    bool Apply(PolicyScope scope, long epoch, string digest);
}

/// <summary>
/// The applied governance of this domain, with the key set read from the domain's key directory
/// (<c>keyset.json</c> verified against <c>root.vkey</c>, as <c>meshbus keys init</c> writes them).
/// </summary>
public sealed class AppliedGovernance : IAppliedGovernance
{
    private readonly ConcurrentDictionary<PolicyScope, (long Epoch, string Digest)> _policies = new();
    private readonly object _gate = new();

    /// <summary>Reads the key set sequence from the configured key directory, when there is one.</summary>
    public AppliedGovernance(IOptions<MeshBusOptions> options)
        : this(ReadKeySetSequence(options.Value.ResolvedKeyDirectory))
    {
    }

    /// <summary>Starts from a known key set sequence.</summary>
    public AppliedGovernance(long keySetSequence) => KeySetSequence = keySetSequence;

    /// <inheritdoc />
    public long KeySetSequence { get; }

    /// <inheritdoc />
    public long Epoch(PolicyScope scope) => _policies.TryGetValue(scope, out var p) ? p.Epoch : 0;

    /// <inheritdoc />
    public string Digest(PolicyScope scope) => _policies.TryGetValue(scope, out var p) ? p.Digest : "";

    /// <inheritdoc />
    public bool Apply(PolicyScope scope, long epoch, string digest)
    {
        lock (_gate)
        {
            if (_policies.TryGetValue(scope, out var current) && current.Epoch >= epoch)
            {
                return false;
            }

            _policies[scope] = (epoch, digest);
            return true;
        }
    }

    /// <summary>The sequence of the verified key set in <paramref name="keyDirectory"/>, or 0 when there is none.</summary>
    /// <exception cref="KeySetException">The key set is present but not signed by the directory's root.</exception>
    public static long ReadKeySetSequence(string keyDirectory)
    {
        var keySet = Path.Combine(keyDirectory, "keyset.json");
        var root = Path.Combine(keyDirectory, "root.vkey");
        if (!File.Exists(keySet) || !File.Exists(root))
        {
            return 0;
        }

        var rootKey = VerifierKey.Parse(File.ReadAllText(root).Trim());
        return KeySet.Verify(File.ReadAllText(keySet), rootKey.PublicKey).Sequence;
    }
}
