using MeshBus.Trust;
using MeshBus.Trust.Notes;

namespace MeshBus.Ledger.Tests;

/// <summary>
/// The reference example of the signed-note format (c2sp.org/signed-note), from the documentation of the Go reference
/// implementation, golang.org/x/mod/sumdb/note (BSD-3-Clause): key, text and signature are copied as data.
/// </summary>
public sealed class SignedNoteReferenceExampleTests
{
    private const string VerifierKeyText = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    private const string SignerKeyText = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    private const string Text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    private const string Note = Text + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    [Fact]
    public void The_reference_note_opens_with_the_reference_verifier_key()
    {
        var key = VerifierKey.Parse(VerifierKeyText);

        var opened = SignedNote.Open(Note, [key]);

        Assert.Equal(Text, opened.Body);
        Assert.Single(opened.Verified);
    }

    [Fact]
    public void The_reference_note_with_one_changed_letter_is_rejected()
    {
        var key = VerifierKey.Parse(VerifierKeyText);

        Assert.ThrowsAny<Exception>(() => SignedNote.Open(Note.Replace("cryptography", "cryptographY", StringComparison.Ordinal), [key]));
    }

    [Fact]
    public void Signing_the_reference_text_with_the_reference_key_gives_the_reference_note_byte_for_byte()
    {
        // The private key text is PRIVATE+KEY+<name>+<key id>+base64(0x01 || 32-byte seed).
        var seed = Convert.FromBase64String(SignerKeyText.Split('+', 5)[4])[1..];

        var note = SignedNote.Sign(Text, new Ed25519NoteSigner("PeterNeumann", seed));

        Assert.Equal(Note, note);
    }
}
