namespace MeshBus.Workers.Authorize.Checks;

/// <summary>What this replica has loaded itself: compared with what the Sync worker announces as applied.</summary>
public interface ILoadedGovernance
{
    /// <summary>The sequence of the domain's key set this replica verifies with.</summary>
    long KeySetSequence { get; }

    /// <summary>The epoch of the domain policy this replica decides with (-1 when none is loaded).</summary>
    long DomainPolicyEpoch { get; }

    /// <summary>The digest of the federation policy this replica decides with (empty when none).</summary>
    string FederationPolicyDigest => "";
}
