using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Trust;
using MeshBus.Workers.Lineage;
using Xunit;

namespace MeshBus.Workers.Tests.Skeleton;

/// <summary>
/// The lineage log is evidence: a governance statement that carries authority (quarantine, release, acknowledgement, key
/// set, policy) becomes a leaf only when signed by a key allowed to say it. Each forgery below is one anybody on the bus
/// could publish; each must reach the recorder and leave no record.
/// </summary>
public sealed class LineageAuthorityTests
{
    private static string Bundle(long epoch) => $$"""
        {
          "format": "meshbus-policy/v1", "scope": "domain", "domain": "{{SkeletonHarness.Domain}}", "epoch": {{epoch}},
          "rules": [ { "id": "allow-ops", "effect": "allow", "match": { "actions": ["deploy"], "resources": ["k8s://cluster-a/**"] } } ]
        }
        """;

    private static (GovernanceSigner Envelope, RootKey Root, DomainKeys Grant) Authorities(SkeletonHarness h) =>
        (GovernanceSigner.From(DomainKeys.Load(h.Keys.DirectoryPath, KeyUsage.Envelope), h.Clock),
         DomainAdministration.ReadRoot(h.Keys.DirectoryPath),
         DomainKeys.Load(h.Keys.DirectoryPath, KeyUsage.Grant));

    private static PolicyPublished Publication(string signedBundle, DateTimeOffset at)
    {
        var parsed = PolicyBundle.Parse(signedBundle);
        return new PolicyPublished(SkeletonHarness.Domain, PolicyScope.Domain, parsed.Epoch, parsed.Digest, signedBundle, at);
    }

    [Fact(Timeout = 60_000)]
    public async Task Statements_signed_by_the_keys_allowed_to_say_them_are_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var (envelope, root, grant) = Authorities(h);
        var now = h.Clock.GetUtcNow();
        var agent = SkeletonHarness.Domain + "/agents/deployer";
        var quarantine = envelope.Sign(new AgentQuarantined(SkeletonHarness.Domain, agent, GovernanceReason.HaltNotAcknowledged, "no ack", null, now));
        var release = new AgentReleased(SkeletonHarness.Domain, agent, "alice", now.AddSeconds(1)) { QuarantinedAt = now };
        release = release with { Signature = GovernanceSignatures.SignAsRoot(release, root) };
        var synced = envelope.Sign(new PolicySynced(SkeletonHarness.Domain, SkeletonHarness.Domain, PolicyScope.Domain, 7, "sha256:aa", now));
        var keySet = new KeySetPublished(SkeletonHarness.Domain, h.Keys.KeySet.Sequence, h.Keys.SignedKeySet, now);
        var policy = Publication(PolicyBundleSigning.Sign(Bundle(7), grant.Signer(KeyUsage.Grant, now)), now);

        await h.Bus.Publish(quarantine);
        await h.Bus.Publish(release);
        await h.Bus.Publish(synced);
        await h.Bus.Publish(keySet);
        await h.Bus.Publish(policy);

        await h.LineageKeyAsync(LineageKeys.Of(quarantine));
        await h.LineageKeyAsync(LineageKeys.Of(release));
        await h.LineageKeyAsync(LineageKeys.Of(synced));
        await h.LineageKeyAsync(LineageKeys.Of(keySet));
        await h.LineageKeyAsync(LineageKeys.Of(policy));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_quarantine_changed_after_signing_is_not_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var (envelope, _, _) = Authorities(h);
        var genuine = envelope.Sign(new AgentQuarantined(SkeletonHarness.Domain, SkeletonHarness.Domain + "/agents/a", GovernanceReason.HaltNotAcknowledged, "no ack", null, h.Clock.GetUtcNow()));
        var forged = genuine with { Agent = SkeletonHarness.Domain + "/agents/victim" };

        await AssertRefusedAsync(h, forged, LineageKeys.Of(forged));
        Assert.Null(await h.Lineage.GetByKeyAsync(LineageKeys.Of(forged)));
    }

    [Fact(Timeout = 60_000)]
    public async Task An_unsigned_acknowledgement_is_not_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var forged = new PolicySynced(SkeletonHarness.Domain, SkeletonHarness.Domain, PolicyScope.Domain, 9_000_000, "sha256:ff", h.Clock.GetUtcNow());

        await AssertRefusedAsync(h, forged, LineageKeys.Of(forged));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_release_signed_by_a_working_key_instead_of_the_root_is_not_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var now = h.Clock.GetUtcNow();
        var release = new AgentReleased(SkeletonHarness.Domain, SkeletonHarness.Domain + "/agents/a", "mallory", now) { QuarantinedAt = now.AddSeconds(-5) };
        var envelopeKey = DomainKeys.Load(h.Keys.DirectoryPath, KeyUsage.Envelope).Signer(KeyUsage.Envelope, now);
        var forged = release with { Signature = GovernanceSignatures.Sign(release, envelopeKey) };

        await AssertRefusedAsync(h, forged, LineageKeys.Of(forged));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_key_set_signed_by_another_root_is_not_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var impostorDir = Path.Combine(Path.GetTempPath(), "meshbus-impostor-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var impostor = DomainAdministration.Initialize(impostorDir, SkeletonHarness.Domain, h.Clock.GetUtcNow());
            var forged = new KeySetPublished(SkeletonHarness.Domain, impostor.KeySet.Sequence + 100, impostor.SignedKeySet, h.Clock.GetUtcNow());

            await AssertRefusedAsync(h, forged, LineageKeys.Of(forged));
        }
        finally
        {
            Directory.Delete(impostorDir, recursive: true);
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task A_key_set_published_under_another_sequence_than_it_carries_is_not_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var forged = new KeySetPublished(SkeletonHarness.Domain, h.Keys.KeySet.Sequence + 1_000, h.Keys.SignedKeySet, h.Clock.GetUtcNow());

        await AssertRefusedAsync(h, forged, LineageKeys.Of(forged));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_policy_signed_by_a_key_that_may_not_sign_policy_is_not_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var now = h.Clock.GetUtcNow();
        var credentialKey = DomainKeys.Load(h.Keys.DirectoryPath, KeyUsage.Credential).Signer(KeyUsage.Credential, now);
        var forged = Publication(PolicyBundleSigning.Sign(Bundle(8), credentialKey), now);

        await AssertRefusedAsync(h, forged, LineageKeys.Of(forged));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_policy_message_that_misstates_its_signed_bundle_is_not_recorded()
    {
        await using var h = await SkeletonHarness.StartAsync();
        var now = h.Clock.GetUtcNow();
        var genuine = Publication(PolicyBundleSigning.Sign(Bundle(8), DomainKeys.Load(h.Keys.DirectoryPath, KeyUsage.Grant).Signer(KeyUsage.Grant, now)), now);
        var forged = genuine with { Epoch = 9_000 };

        await AssertRefusedAsync(h, forged, LineageKeys.Of(forged));
    }

    private static async Task AssertRefusedAsync<T>(SkeletonHarness h, T forged, string key)
        where T : class
    {
        await h.Bus.Publish(forged);
        await h.LineageConsumedAsync<T>(m => ReferenceEquals(m, forged) || Equals(m, forged));
        Assert.Null(await h.Lineage.GetByKeyAsync(key));
        Assert.True(h.RecorderFaulted<T>(), $"the recorder should fault the forged {typeof(T).Name} (to its error queue, with the reason)");
    }
}
