using System.Text;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;
using Microsoft.Extensions.Time.Testing;

namespace MeshBus.Trust.Tests;

public sealed class EnvelopeTests
{
    private readonly TestDomain _sender = new("acme.example/prod");
    private readonly TestDomain _receiver = new("partner.example/prod");
    private readonly TrustConfig _trust;
    private readonly EnvelopeOptions _options;

    public EnvelopeTests()
    {
        _trust = new TrustConfig([_sender.Root.VerifierKey], _receiver.KeySet);
        Assert.True(_trust.AcceptKeySet(_sender.SignedKeySet, TestDomain.Now).IsValid);
        _options = new EnvelopeOptions
        {
            LocalDomain = _receiver.Name,
            TimeToLive = new Dictionary<string, TimeSpan> { ["IntentEndorsed"] = TimeSpan.FromMinutes(2), ["DomainHeartbeat"] = TimeSpan.FromSeconds(30) },
            Skew = TimeSpan.FromSeconds(5),
        };
    }

    private static readonly byte[] PayloadBytes = Encoding.UTF8.GetBytes("""{"intentId":"x", "spacing" :  "kept exactly"}""");

    private Envelope Envelope(string type = "IntentEndorsed", TimeSpan? life = null) =>
        new(_sender.Name, _receiver.Name, 7, Guid.NewGuid(), type, TestDomain.Now, TestDomain.Now + (life ?? TimeSpan.FromMinutes(1)), PayloadBytes);

    private byte[] Seal(Envelope e) => Envelopes.Seal(e, _sender.Signers[KeyUsage.Envelope]).ToWire();

    [Fact]
    public void An_envelope_opens_to_exactly_the_signed_payload_bytes()
    {
        var e = Envelope();
        var result = Envelopes.Verify(Seal(e), _trust, _options, TestDomain.Now.AddSeconds(10));
        Assert.True(result.IsValid, result.Detail);
        Assert.Equal(PayloadBytes, result.Value!.Payload.ToArray());
        Assert.Equal(e with { Payload = default }, result.Value with { Payload = default });
    }

    [Fact]
    public async Task A_replayed_envelope_is_refused_the_second_time()
    {
        var store = new InMemorySeenIdStore(new FakeTimeProvider(TestDomain.Now));
        var wire = Seal(Envelope());
        Assert.True((await Envelopes.OpenAsync(wire, _trust, _options, store, TestDomain.Now)).IsValid);
        var again = await Envelopes.OpenAsync(wire, _trust, _options, store, TestDomain.Now.AddSeconds(30));
        Assert.Equal(GovernanceReason.ReplayDetected, again.Reason);
    }

    [Fact]
    public async Task The_seen_store_forgets_ids_after_their_keep_until_time()
    {
        var time = new FakeTimeProvider(TestDomain.Now);
        var store = new InMemorySeenIdStore(time);
        var id = Guid.NewGuid();
        Assert.True(await store.TryMarkSeenAsync("a", id, TestDomain.Now.AddMinutes(1)));
        Assert.False(await store.TryMarkSeenAsync("a", id, TestDomain.Now.AddMinutes(1)));
        Assert.True(await store.TryMarkSeenAsync("b", id, TestDomain.Now.AddMinutes(1)));
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.True(await store.TryMarkSeenAsync("a", id, TestDomain.Now.AddMinutes(5)));
    }

    [Fact]
    public async Task A_forged_envelope_is_not_recorded_as_seen()
    {
        var store = new InMemorySeenIdStore(new FakeTimeProvider(TestDomain.Now));
        var e = Envelope();
        var forged = Envelopes.Seal(e, new Ed25519Signer(_sender.Signers[KeyUsage.Envelope].KeyId, KeyUsage.Envelope, Ed25519Keys.NewPrivateKey())).ToWire();
        Assert.Equal(GovernanceReason.SignatureInvalid, (await Envelopes.OpenAsync(forged, _trust, _options, store, TestDomain.Now)).Reason);
        Assert.Equal(0, store.Count);
        Assert.True((await Envelopes.OpenAsync(Seal(e), _trust, _options, store, TestDomain.Now)).IsValid);
    }

    [Fact]
    public void A_tampered_body_is_refused()
    {
        var sealedEnvelope = Envelopes.Seal(Envelope(), _sender.Signers[KeyUsage.Envelope]);
        var body = Encoding.UTF8.GetString(sealedEnvelope.Body).Replace("\"linkSeq\":7", "\"linkSeq\":8", StringComparison.Ordinal);
        var tampered = (sealedEnvelope with { Body = Encoding.UTF8.GetBytes(body) }).ToWire();
        Assert.Equal(GovernanceReason.SignatureInvalid, Envelopes.Verify(tampered, _trust, _options, TestDomain.Now).Reason);
    }

    [Fact]
    public void An_envelope_signed_with_a_non_envelope_key_is_refused()
    {
        var grantKey = _sender.Signers[KeyUsage.Grant];
        var asEnvelopeKey = new Ed25519Signer(grantKey.KeyId, KeyUsage.Envelope, ExportSeed(grantKey));
        var result = Envelopes.Verify(Envelopes.Seal(Envelope(), asEnvelopeKey).ToWire(), _trust, _options, TestDomain.Now);
        Assert.Equal(GovernanceReason.SignatureInvalid, result.Reason);
        Assert.Contains("not a envelope key", result.Detail, StringComparison.Ordinal);
    }

    private static byte[] ExportSeed(Ed25519Signer s) =>
        (byte[])typeof(Ed25519Signer).GetMethod("ExportPrivateKey", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.Invoke(s, null)!;

    [Fact]
    public void An_envelope_for_another_domain_is_refused()
    {
        var e = Envelope() with { To = "third.example/prod" };
        Assert.Contains("addressed to", Envelopes.Verify(Seal(e), _trust, _options, TestDomain.Now).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_envelope_from_an_unpinned_domain_is_refused()
    {
        var stranger = new TestDomain("stranger.example/prod");
        var e = Envelope() with { From = stranger.Name };
        var wire = Envelopes.Seal(e, stranger.Signers[KeyUsage.Envelope]).ToWire();
        Assert.Equal(GovernanceReason.UnknownDomain, Envelopes.Verify(wire, _trust, _options, TestDomain.Now).Reason);
    }

    [Fact]
    public void An_unknown_type_is_refused()
    {
        Assert.Contains("unknown envelope type", Envelopes.Verify(Seal(Envelope("GrantIssuedX")), _trust, _options, TestDomain.Now).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_lifetime_longer_than_the_types_ttl_is_refused()
    {
        Assert.True(Envelopes.Verify(Seal(Envelope("DomainHeartbeat", TimeSpan.FromSeconds(30))), _trust, _options, TestDomain.Now).IsValid);
        var result = Envelopes.Verify(Seal(Envelope("DomainHeartbeat", TimeSpan.FromSeconds(31))), _trust, _options, TestDomain.Now);
        Assert.Contains("TTL", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_expired_envelope_is_refused_beyond_the_skew()
    {
        var wire = Seal(Envelope());
        var exp = TestDomain.Now.AddMinutes(1);
        Assert.True(Envelopes.Verify(wire, _trust, _options, exp.AddSeconds(5)).IsValid);
        Assert.Equal(GovernanceReason.SyncStale, Envelopes.Verify(wire, _trust, _options, exp.AddSeconds(5).AddMilliseconds(1)).Reason);
    }

    [Fact]
    public void An_envelope_from_the_future_is_refused()
    {
        var wire = Seal(Envelope());
        Assert.True(Envelopes.Verify(wire, _trust, _options, TestDomain.Now.AddSeconds(-5)).IsValid);
        Assert.Contains("future", Envelopes.Verify(wire, _trust, _options, TestDomain.Now.AddSeconds(-6)).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_oversized_envelope_is_refused()
    {
        var big = Envelope() with { Payload = new byte[2 * 1024 * 1024] };
        Assert.Equal(GovernanceReason.MalformedInput, Envelopes.Verify(Seal(big), _trust, _options, TestDomain.Now).Reason);
    }

    [Fact]
    public void A_duplicate_member_in_the_body_is_refused()
    {
        var sealedEnvelope = Envelopes.Seal(Envelope(), _sender.Signers[KeyUsage.Envelope]);
        var body = Encoding.UTF8.GetString(sealedEnvelope.Body).TrimEnd('}') + ",\"to\":\"acme.example/prod\"}";
        var bytes = Encoding.UTF8.GetBytes(body);
        var resigned = new SealedEnvelope(bytes, sealedEnvelope.KeyId, _sender.Signers[KeyUsage.Envelope].Sign([.. Encoding.ASCII.GetBytes(Envelopes.SignaturePrefix), .. bytes]));
        Assert.Contains("duplicate", Envelopes.Verify(resigned.ToWire(), _trust, _options, TestDomain.Now).Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{}")]
    [InlineData("[1,2]")]
    [InlineData("""{"body":"","kid":"x","sig":""}""")]
    [InlineData("""{"body":"e30","kid":"x","sig":"AA","extra":1}""")]
    public void Garbage_is_refused_as_malformed_without_throwing(string wire)
    {
        Assert.Equal(GovernanceReason.MalformedInput, Envelopes.Verify(Encoding.UTF8.GetBytes(wire), _trust, _options, TestDomain.Now).Reason);
    }

    [Fact]
    public void The_wire_form_has_body_kid_and_sig()
    {
        var o = JsonNode.Parse(Seal(Envelope()))!.AsObject();
        Assert.Equal(["body", "kid", "sig"], o.Select(p => p.Key).Order());
    }
}
