using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Workers.Authorize;
using MeshBus.Workers.Authorize.Checks;
using MeshBus.Workers.Authorize.Decisions;
using MeshBus.Workers.Authorize.Steps;
using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Tests.Authorize.Steps;

/// <summary>What the step tests share: the test domain's options, a verified intent, and a sync state set by hand.</summary>
internal static class StepFixtures
{
    public static IOptions<MeshBusOptions> Mesh { get; } = Options.Create(new MeshBusOptions { Domain = TestDomainKeys.Domain });

    public static IOptions<AuthorizeOptions> Authorize(Action<AuthorizeOptions>? change = null)
    {
        var options = new AuthorizeOptions();
        change?.Invoke(options);
        return Options.Create(options);
    }

    public static IdentityStep Identity(TestDomainKeys keys) => new(new TrustIntentVerifier(keys.AuthorizeKeys, Authorize()), Mesh);

    /// <summary>A freshly signed intent of a test agent, through the identity step.</summary>
    public static VerifiedIntent Verified(TestDomainKeys keys, TestAgent agent, DateTimeOffset now, string action = "deploy")
    {
        var identity = Identity(keys);
        var intent = agent.Intent(now, action: action);
        var (credential, _) = identity.Sender(intent, now);
        return identity.Local(intent, credential!).Verified!;
    }
}

/// <summary>An <see cref="ISyncState"/> whose answer per domain the test sets.</summary>
internal sealed class SetSyncState : ISyncState
{
    public Dictionary<string, SyncCheck> Checks { get; } = new(StringComparer.Ordinal);

    public bool Observe(DomainHeartbeat heartbeat) => true;

    public void Observe(PolicySynced synced)
    {
    }

    public ValueTask<SyncCheck> CheckAsync(string domain, DateTimeOffset now, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Checks.TryGetValue(domain, out var check) ? check : SyncCheck.Unknown($"{domain} is not a known domain"));
}
