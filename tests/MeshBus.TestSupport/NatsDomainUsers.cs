namespace MeshBus.TestSupport;

/// <summary>A test domain's NATS user, as scripts/nats-test-config.sh creates it (it may publish only as its domain).</summary>
/// <param name="Domain">The domain.</param>
/// <param name="User">The NATS user.</param>
/// <param name="Password">Its password.</param>
public sealed record NatsDomainUser(string Domain, string User, string Password);

/// <summary>
/// The two federation test domains' NATS users, from the variables scripts/test.sh exports
/// (<c>MESH_TEST_NATS_ORIGIN_USER</c>, <c>…_PASSWORD</c>, <c>…_DOMAIN</c>, and the same for <c>TARGET</c>).
/// </summary>
public static class NatsDomainUsers
{
    /// <summary>The origin domain's user.</summary>
    public static NatsDomainUser Origin => Read("ORIGIN");

    /// <summary>The target domain's user.</summary>
    public static NatsDomainUser Target => Read("TARGET");

    private static NatsDomainUser Read(string which)
    {
        string Var(string name) => Environment.GetEnvironmentVariable($"MESH_TEST_NATS_{which}_{name}") is { Length: > 0 } v
            ? v
            : throw new InvalidOperationException(
                $"MESH_TEST_NATS_{which}_{name} is not set: run through ./scripts/test.sh, or start nats-server with the configuration of " +
                "scripts/nats-test-config.sh and source the variables it prints.");
        return new NatsDomainUser(Var("DOMAIN"), Var("USER"), Var("PASSWORD"));
    }
}
