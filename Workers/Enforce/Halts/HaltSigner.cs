using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Enforce.Halts;

/// <summary>
/// Signs the halts Enforce sends to agents' queues (<see cref="AgentNotices.HaltType"/>) with the domain's grant key,
/// the key agents already trust for what the domain tells them (docs/trust.md): an agent acts on a halt only when it
/// verifies, so a halt put in its queue by anyone else is ignored. Enforce holds the grant key's private half for this
/// alone.
/// </summary>
public sealed class HaltSigner
{
    private readonly Lazy<DomainKeys> _keys;
    private readonly TimeProvider _clock;

    /// <summary>Creates the signer; the keys are read on first use from the domain's key directory (or taken as given).</summary>
    public HaltSigner(IOptions<MeshBusOptions> mesh, TimeProvider clock, DomainKeys? keys = null)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        _clock = clock;
        _keys = new Lazy<DomainKeys>(() => keys is not null && keys.Usages.Contains(KeyUsage.Grant)
            ? keys
            : DomainKeys.Load(mesh.Value.ResolvedKeyDirectory, KeyUsage.Grant));
    }

    /// <summary>The halt with its token.</summary>
    public HaltExecution Sign(HaltExecution halt)
    {
        var now = _clock.GetUtcNow();
        return AgentNotices.Sign(halt, _keys.Value.Signer(KeyUsage.Grant, now), now);
    }
}
