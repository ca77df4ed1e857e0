using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using MeshBus.Policy.Tooling;
using MeshBus.Trust;

namespace MeshBus.Cli.Commands.Policy;

/// <summary>
/// <c>meshbus policy sign FILE --domain-dir DIR [--root] [--out OUT]</c>: sets a bundle's digest and adds the domain's
/// signature (its grant key for domain and egress bundles, its root for federation bundles).
/// </summary>
public sealed class PolicySignCommand : CliCommand, IHasFlags
{
    /// <inheritdoc />
    public override string Name => "policy sign";

    /// <inheritdoc />
    public override string Summary => "Sign a policy bundle: with the domain's grant key, or its root (--root) for a federation bundle";

    /// <inheritdoc />
    public override string Usage => """
        Usage: meshbus policy sign FILE --domain-dir DIR [--root] [--out OUT]

        Reads a meshbus-policy/v1 bundle (FILE, or - for standard input), checks it as 'meshbus policy lint' does, sets
        its digest and adds this domain's signature over it. Signatures by other keys over the same digest are kept;
        signatures over an older digest (the content changed since) are dropped and counted on standard error. A stale
        digest is not a refusal: signing recomputes it.

          --domain-dir DIR   the domain directory ('meshbus keys init')
          (no --root)        a domain or egress bundle of this domain, signed with its current grant key; a federation
                             bundle is refused
          --root             a federation bundle, signed with the domain's root key (DIR/root.key) under the key id
                             <domain>+<8 hex root key id>; every member's root must sign the same digest, one after
                             the other; a domain or egress bundle is refused
          --out OUT          where to write the signed bundle (default standard output); OUT may be FILE itself, it
                             is replaced atomically

        Prints one summary line on standard error: scope, domain, epoch, digest, signing key id, number of signatures.
        Exit codes: 0 signed, 1 refused (the bundle does not lint, the wrong scope or domain for this key), 2 usage error,
        unreadable file or domain directory.
        """;

    /// <inheritdoc />
    public string[] Flags => ["root"];

    /// <inheritdoc />
    public override async Task<int> RunAsync(CliArgs args, CliConsole console, CancellationToken cancellationToken)
    {
        var dir = args.Required("domain-dir");
        var asRoot = args.Flag("root");
        var output = args.Option("out");
        args.RejectUnknown();
        if (args.Positionals.Count != 1)
        {
            throw new CliUsageException("give exactly one bundle file");
        }

        var file = args.Positionals[0];
        if (await console.TryReadTextAsync(file, "policy sign", cancellationToken) is not { } json)
        {
            return 2;
        }

        var errors = PolicyLint.Check(json);
        var staleDigest = errors.Count > 0 && errors.All(e => e.Kind == PolicyBundleErrorKind.DigestMismatch);
        if (staleDigest)
        {
            // The content changed since it was digested: signing sets the new digest, so check the bundle as it will be.
            errors = PolicyLint.Check(PolicyBundleSigning.WithDigest(json));
        }

        if (errors.Count > 0)
        {
            foreach (var e in errors)
            {
                console.Error.WriteLine($"{file}: {e}");
            }

            console.Error.WriteLine($"meshbus policy sign: refused, {file} does not lint ({errors.Count} problem{(errors.Count == 1 ? "" : "s")}); nothing signed");
            return 1;
        }

        var bundle = PolicyBundle.Parse(PolicyBundleSigning.WithDigest(json));
        var label = $"{PolicyBundle.ScopeName(bundle.Scope)} policy of {bundle.Domain}";
        if (asRoot != (bundle.Scope == PolicyScope.Federation))
        {
            console.Error.WriteLine(asRoot
                ? $"meshbus policy sign: refused, {file} is the {label}: a root signs only federation bundles; sign it without --root (with the domain's grant key)"
                : $"meshbus policy sign: refused, {file} is the {label}: a federation bundle needs every member's root; sign it with --root");
            return 1;
        }

        var keys = DomainKeys.Load(dir, asRoot ? [] : [KeyUsage.Grant]);
        string keyId;
        string signed;
        if (asRoot)
        {
            var root = DomainAdministration.ReadRoot(dir);
            if (!root.VerifierKey.Equals(keys.Root))
            {
                throw new KeyFileException($"root.key in '{dir}' does not match root.vkey");
            }

            keyId = RootKey.PolicyKeyId(root.VerifierKey);
            signed = PolicyBundleSigning.SignAsRoot(json, root);
            CheckSignature(signed, keyId, root.PublicKey);
        }
        else
        {
            if (bundle.Domain != keys.Domain)
            {
                console.Error.WriteLine($"meshbus policy sign: refused, {file} is the {label} but '{dir}' holds the keys of {keys.Domain}");
                return 1;
            }

            var signer = keys.Signer(KeyUsage.Grant, DateTimeOffset.UtcNow);
            keyId = signer.KeyId;
            signed = PolicyBundleSigning.Sign(json, signer);
            CheckSignature(signed, keyId, signer.PublicKey);
        }

        if (output is null or "-")
        {
            await console.Out.WriteAsync(signed.AsMemory(), cancellationToken);
        }
        else
        {
            try
            {
                KeyFiles.WritePublic(output, signed);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                console.Error.WriteLine($"meshbus policy sign: cannot write {output}: {e.Message}");
                return 2;
            }
        }

        var result = PolicyBundle.Parse(signed);
        var dropped = staleDigest ? CountSignatures(json) : 0;
        console.Error.WriteLine($"signed the {label}, epoch {result.Epoch}, {result.Digest}, with {keyId}: {result.Signatures.Count} signature{(result.Signatures.Count == 1 ? "" : "s")}"
            + (dropped > 0 ? $" ({dropped} over the previous digest dropped: the content changed)" : ""));
        return 0;
    }

    // The signature just made must verify under the key that made it; anything else is a bug, never an output.
    private static void CheckSignature(string signed, string keyId, byte[] publicKey)
    {
        var problems = PolicyBundleSigning.Verify(PolicyBundle.Parse(signed), PolicySigners.EveryKey(new Dictionary<string, byte[]> { [keyId] = publicKey }));
        if (problems.Count > 0)
        {
            throw new InvalidOperationException("the new signature does not verify: " + string.Join("; ", problems));
        }
    }

    private static int CountSignatures(string json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        return doc.RootElement.TryGetProperty("signatures", out var s) && s.ValueKind == System.Text.Json.JsonValueKind.Array ? s.GetArrayLength() : 0;
    }
}
