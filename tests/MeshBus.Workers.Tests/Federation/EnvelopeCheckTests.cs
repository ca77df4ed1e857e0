using System.Text.Json;
using MeshBus.Contracts;
using MeshBus.Federation;
using MeshBus.Trust;
using MeshBus.Workers.Tests.Authorize;
using Xunit;

namespace MeshBus.Workers.Tests.Federation;

/// <summary>
/// DESIGN.md §8 rule 3: a bridged message that does not verify never reaches a consumer. Each forged envelope is handed
/// to the target's bridge as the link would deliver it; it is dropped and counted by its reason, and a valid envelope
/// sent afterwards (the positive signal) is the only heartbeat of the origin the target's bus consumed.
/// </summary>
public sealed class EnvelopeCheckTests
{
    private const string T = CrossDomainHarness.TargetDomain;
    private const string O = TestDomainKeys.Domain;
    private static long _sequence = 5_000_000;

    private static (string Subject, byte[] Wire, long Sequence) Heartbeat(
        CrossDomainHarness x,
        ISigner? key = null,
        string from = O,
        string to = T,
        string? producer = null,
        DateTimeOffset? issuedAt = null,
        TimeSpan? ttl = null,
        string? subjectFrom = null,
        Func<byte[], byte[]>? tamper = null,
        string subjectTo = T)
    {
        var sequence = Interlocked.Increment(ref _sequence);
        // Signed by the origin's envelope key as its Sync signs heartbeats (the bridge's envelope is a second signature).
        var heartbeat = new GovernanceSigner(() => x.OriginDomain.Signers[KeyUsage.Envelope]).Sign(
            new DomainHeartbeat(producer ?? from, sequence, x.Target.Time.GetUtcNow(), 1, 7, 3, ""));
        var issued = issuedAt ?? x.Target.Time.GetUtcNow();
        var envelope = new Envelope(from, to, sequence, Guid.NewGuid(), nameof(DomainHeartbeat), issued, issued + (ttl ?? TimeSpan.FromSeconds(30)),
            JsonSerializer.SerializeToUtf8Bytes(heartbeat, FederationBridge.PayloadJson));
        var sealedEnvelope = Envelopes.Seal(envelope, key ?? x.OriginDomain.Signers[KeyUsage.Envelope]);
        if (tamper is not null)
        {
            sealedEnvelope = sealedEnvelope with { Body = tamper(sealedEnvelope.Body) };
        }

        return (Subjects.For(subjectTo, subjectFrom ?? from, nameof(DomainHeartbeat)), sealedEnvelope.ToWire(), sequence);
    }

    private static async Task<(CrossDomainHarness X, FederationBridge Bridge)> StartAsync()
    {
        var x = await CrossDomainHarness.StartAsync(bridge: EmbeddedBridgeTests.Over(new InProcessFederationNetwork()));
        return (x, EmbeddedBridgeTests.BridgeOf(x.Target));
    }

    /// <summary>Hands a forged envelope over, expects it counted under <paramref name="reason"/>, then proves with a valid one that nothing forged was consumed.</summary>
    private static async Task AssertDroppedAsync(CrossDomainHarness x, FederationBridge bridge, (string Subject, byte[] Wire, long Sequence) forged, DropReason reason)
    {
        var before = bridge.Counters.Dropped(reason);
        await bridge.ReceiveAsync(new LinkMessage(forged.Subject, forged.Wire), CancellationToken.None);
        Assert.Equal(before + 1, bridge.Counters.Dropped(reason));

        var valid = Heartbeat(x);
        await bridge.ReceiveAsync(new LinkMessage(valid.Subject, valid.Wire), CancellationToken.None);
        await x.Target.EventuallyAsync(() => x.Target.Recorder.ConsumedOf<DomainHeartbeat>().Any(m => m.Message.Sequence == valid.Sequence), "the valid heartbeat");
        Assert.DoesNotContain(x.Target.Recorder.ConsumedOf<DomainHeartbeat>(), m => m.Message.Sequence == forged.Sequence);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_valid_envelope_reaches_the_targets_bus_with_exactly_its_signed_payload()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        var valid = Heartbeat(x);

        await bridge.ReceiveAsync(new LinkMessage(valid.Subject, valid.Wire), CancellationToken.None);

        await x.Target.EventuallyAsync(() => x.Target.Recorder.ConsumedOf<DomainHeartbeat>().Any(m => m.Message.Sequence == valid.Sequence), "heartbeat");
        var published = Assert.Single(x.Target.Recorder.PublishedOf<DomainHeartbeat>(), m => m.Sequence == valid.Sequence);
        Assert.Equal(O, published.Domain);
        Assert.Equal(0, bridge.Counters.DroppedTotal);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_signed_with_a_key_outside_the_senders_key_set_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        await AssertDroppedAsync(x, bridge, Heartbeat(x, key: Ed25519Signer.Generate(KeyUsage.Envelope)), DropReason.SignatureInvalid);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_signed_with_the_senders_grant_key_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        await AssertDroppedAsync(x, bridge, Heartbeat(x, key: new RelabelledSigner(x.OriginDomain.Signers[KeyUsage.Grant], KeyUsage.Envelope)), DropReason.SignatureInvalid);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_with_a_tampered_payload_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        // Change one character of the base64url payload (still well-formed): the signature covers the exact bytes.
        var forged = Heartbeat(x, tamper: body =>
        {
            var b = body.ToArray();
            var at = System.Text.Encoding.ASCII.GetString(b).IndexOf("\"payload\":\"", StringComparison.Ordinal) + 12;
            b[at] = b[at] == (byte)'A' ? (byte)'B' : (byte)'A';
            return b;
        });
        await AssertDroppedAsync(x, bridge, forged, DropReason.SignatureInvalid);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_from_a_domain_that_is_not_pinned_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        var stranger = FederatedDomain.Create("stranger.example/prod");
        await AssertDroppedAsync(x, bridge, Heartbeat(x, key: stranger.Signers[KeyUsage.Envelope], from: stranger.Name), DropReason.UnknownPeer);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_published_under_another_senders_subject_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        await AssertDroppedAsync(x, bridge, Heartbeat(x, subjectFrom: CrossDomainHarness.ThirdDomain), DropReason.SubjectMismatch);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_addressed_to_another_domain_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        await AssertDroppedAsync(x, bridge, Heartbeat(x, to: CrossDomainHarness.ThirdDomain), DropReason.NotAddressedToSelf);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_on_a_subject_addressed_to_another_domain_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        // Signed for T, but published to P's subjects: T's consumer must not have been given it.
        await AssertDroppedAsync(x, bridge, Heartbeat(x, subjectTo: CrossDomainHarness.ThirdDomain), DropReason.NotAddressedToSelf);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_claiming_to_come_from_the_receiving_domain_itself_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        // T's own envelope key resolves (its own key set), but T is not its own peer: nothing of T arrives over the bridge.
        await AssertDroppedAsync(x, bridge, Heartbeat(x, key: x.TargetDomainKeys.Signers[KeyUsage.Envelope], from: T), DropReason.UnknownPeer);
    }

    [Fact(Timeout = 60_000)]
    public async Task Expired_envelope_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        var forged = Heartbeat(x, issuedAt: x.Target.Time.GetUtcNow().AddMinutes(-2));
        await AssertDroppedAsync(x, bridge, forged, DropReason.Expired);
    }

    [Fact(Timeout = 60_000)]
    public async Task Envelope_living_longer_than_its_types_ttl_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        await AssertDroppedAsync(x, bridge, Heartbeat(x, ttl: TimeSpan.FromHours(1)), DropReason.Expired);
    }

    [Fact(Timeout = 60_000)]
    public async Task Validly_signed_message_naming_another_producer_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        // O may not speak for T (or anyone else) even inside its own valid envelope.
        await AssertDroppedAsync(x, bridge, Heartbeat(x, producer: CrossDomainHarness.ThirdDomain), DropReason.ProducerMismatch);
    }

    [Fact(Timeout = 60_000)]
    public async Task Replayed_envelope_id_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        var once = Heartbeat(x);
        await bridge.ReceiveAsync(new LinkMessage(once.Subject, once.Wire), CancellationToken.None);
        await x.Target.EventuallyAsync(() => x.Target.Recorder.ConsumedOf<DomainHeartbeat>().Any(m => m.Message.Sequence == once.Sequence), "first delivery");

        await bridge.ReceiveAsync(new LinkMessage(once.Subject, once.Wire), CancellationToken.None);

        Assert.Equal(1, bridge.Counters.Dropped(DropReason.Replayed));
        var valid = Heartbeat(x);
        await bridge.ReceiveAsync(new LinkMessage(valid.Subject, valid.Wire), CancellationToken.None);
        await x.Target.EventuallyAsync(() => x.Target.Recorder.ConsumedOf<DomainHeartbeat>().Any(m => m.Message.Sequence == valid.Sequence), "the valid heartbeat");
        Assert.Single(x.Target.Recorder.PublishedOf<DomainHeartbeat>(), m => m.Sequence == once.Sequence);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_grant_for_an_agent_of_another_domain_is_dropped()
    {
        var (x, bridge) = await StartAsync();
        await using var _ = x;
        // T's bridge receives a "grant" from O for an agent that is not T's: T has no agent to deliver it to.
        var grant = new GrantIssued(Guid.NewGuid(), O, CrossDomainHarness.ThirdDomain + "/agents/x", "jws", 1, x.Target.Time.GetUtcNow().AddMinutes(1));
        var issued = x.Target.Time.GetUtcNow();
        var envelope = new Envelope(O, T, 1, Guid.NewGuid(), nameof(GrantIssued), issued, issued.AddMinutes(1), JsonSerializer.SerializeToUtf8Bytes(grant, FederationBridge.PayloadJson));
        var wire = Envelopes.Seal(envelope, x.OriginDomain.Signers[KeyUsage.Envelope]).ToWire();

        await bridge.ReceiveAsync(new LinkMessage(Subjects.For(T, O, nameof(GrantIssued)), wire), CancellationToken.None);

        Assert.Equal(1, bridge.Counters.Dropped(DropReason.NotForThisDomain));
        Assert.DoesNotContain(x.Target.Recorder.Published, m => m is GrantIssued g && g.IntentId == grant.IntentId);
    }
}
