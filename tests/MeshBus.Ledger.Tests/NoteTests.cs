using System.Text;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;
using MeshBus.Trust.Notes;
using Microsoft.Extensions.Time.Testing;

namespace MeshBus.Ledger.Tests;

public sealed class NoteTests
{
    private static readonly byte[] LogKey = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] OtherKey = Enumerable.Range(101, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] WitnessKey = Enumerable.Range(51, 32).Select(i => (byte)i).ToArray();

    private static string Body => new Checkpoint("acme.example/prod/lineage", 5, new byte[32]).ToBody();

    [Fact]
    public void A_signed_checkpoint_opens_with_its_key_and_round_trips()
    {
        var signer = new Ed25519NoteSigner("acme.example/prod/lineage", LogKey);
        var note = SignedNote.Sign(Body, signer);
        Assert.StartsWith("acme.example/prod/lineage\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 acme.example/prod/lineage ", note, StringComparison.Ordinal);
        var opened = SignedNote.Open(note, [signer.VerifierKey]);
        Assert.Equal(Body, opened.Body);
        Assert.Equal(5, Checkpoint.Parse(opened.Body).Size);
        Assert.Equal(signer.VerifierKey, VerifierKey.Parse(signer.VerifierKey.ToString()));
        Assert.Contains("+", signer.VerifierKey.ToString().Split('+', 3)[2], StringComparison.Ordinal); // base64 with a plus: split at the first two only
    }

    [Fact]
    public void Unknown_signers_are_ignored_and_a_failing_known_key_rejects()
    {
        var log = new Ed25519NoteSigner("acme.example/prod/lineage", LogKey);
        var stranger = new Ed25519NoteSigner("stranger.example", OtherKey);
        var note = SignedNote.Sign(Body, log, stranger);
        Assert.Single(SignedNote.Open(note, [log.VerifierKey]).Verified);
        Assert.Throws<NoteVerificationException>(() => SignedNote.Open(note, [VerifierKey.Create("nobody", WitnessKey)]));

        // A known key's signature over another body: the note is rejected even though another known key verifies.
        var forged = new Ed25519NoteSigner("stranger.example", OtherKey);
        var other = SignedNote.Sign(Body.Replace("\n5\n", "\n6\n", StringComparison.Ordinal), forged);
        var mixed = note.TrimEnd('\n').Split('\n')[..^1].Append(other.TrimEnd('\n').Split('\n')[^1]);
        var tampered = string.Join('\n', mixed) + "\n";
        Assert.Throws<NoteVerificationException>(() => SignedNote.Open(tampered, [log.VerifierKey, forged.VerifierKey]));
    }

    [Fact]
    public void A_changed_body_fails_verification()
    {
        var log = new Ed25519NoteSigner("acme.example/prod/lineage", LogKey);
        var note = SignedNote.Sign(Body, log).Replace("\n5\n", "\n4\n", StringComparison.Ordinal);
        Assert.Throws<NoteVerificationException>(() => SignedNote.Open(note, [log.VerifierKey]));
    }

    [Fact]
    public void A_cosignature_is_timestamped_and_verifies_with_type_4()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_679_315_147));
        var log = new Ed25519NoteSigner("acme.example/prod/lineage", LogKey);
        var witness = new CosignatureSigner("globex.example/witness", WitnessKey, time);
        var note = SignedNote.AddSignatures(SignedNote.Sign(Body, log), [witness.CosignLine(Body)]);
        var opened = SignedNote.Open(note, [log.VerifierKey, witness.VerifierKey]);
        Assert.Equal(2, opened.Verified.Count);
        Assert.Equal(time.GetUtcNow(), opened.Verified.Single(v => v.Key.SignatureType == VerifierKey.CosignatureType).Timestamp);

        // The signed message is exactly the one of c2sp.org/tlog-cosignature.
        var sig = opened.Signatures.Single(s => s.Name == "globex.example/witness").Signature;
        Assert.Equal(72, sig.Length);
        var msg = Encoding.UTF8.GetBytes("cosignature/v1\ntime 1679315147\n" + Body);
        Assert.True(Ed25519Keys.Verify(Ed25519Keys.PublicKeyOf(WitnessKey), msg, sig[8..]));

        // The same key as a plain (type 1) key has another key id: the line is ignored, not accepted.
        var plain = VerifierKey.Create("globex.example/witness", Ed25519Keys.PublicKeyOf(WitnessKey));
        Assert.NotEqual(plain.KeyId, witness.KeyId);
        Assert.Single(SignedNote.Open(note, [log.VerifierKey, plain]).Verified);
    }

    [Theory]
    [InlineData("o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")]
    [InlineData("o\n1\nAAAA\n")]
    [InlineData("o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")]
    [InlineData("o\n1\n")]
    [InlineData("o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    public void Malformed_checkpoint_bodies_are_refused(string body) =>
        Assert.Throws<FormatException>(() => Checkpoint.Parse(body));

    [Theory]
    [InlineData("no blank line\n")]
    [InlineData("body\n\nnot a signature\n")]
    [InlineData("body\n\n\u2014 name !!!\n")]
    [InlineData("body\n\n\u2014 name AAAA\n")]
    public void Malformed_notes_are_refused(string note) =>
        Assert.Throws<FormatException>(() => SignedNote.Open(note, []));
}
