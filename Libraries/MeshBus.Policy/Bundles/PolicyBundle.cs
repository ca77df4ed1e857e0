using MeshBus.Contracts;

namespace MeshBus.Policy.Bundles;

/// <summary>Whether a rule allows or denies what it matches.</summary>
public enum RuleEffect
{
    /// <summary>The rule allows (unless a deny also matches).</summary>
    Allow,

    /// <summary>The rule denies; any matching deny wins.</summary>
    Deny,
}

/// <summary>
/// The declared match selector of a rule: the only thing the index looks at. A rule applies to an intent only when the
/// intent's action is one of <see cref="Actions"/> (or <see cref="Actions"/> holds <c>*</c>) and its resource matches one
/// of <see cref="Resources"/>.
/// </summary>
/// <param name="Actions">Action names, exact and case-sensitive; <c>*</c> stands for every action.</param>
/// <param name="Resources">Resource patterns (see <see cref="ResourcePattern"/>).</param>
public sealed record RuleSelector(IReadOnlyList<string> Actions, IReadOnlyList<ResourcePattern> Resources)
{
    /// <summary>The action that stands for every action.</summary>
    public const string AnyAction = "*";

    /// <summary>Whether the selector matches an action and a resource.</summary>
    public bool Matches(string action, string resource)
    {
        var actionMatches = false;
        foreach (var a in Actions)
        {
            if (a == AnyAction || string.Equals(a, action, StringComparison.Ordinal))
            {
                actionMatches = true;
                break;
            }
        }

        if (!actionMatches)
        {
            return false;
        }

        foreach (var r in Resources)
        {
            if (r.IsMatch(resource))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>What an allow rule imposes on the grant.</summary>
/// <param name="MaxLeaseSeconds">The longest lease a grant under this rule may have; the decision takes the smallest of the matched allows.</param>
public sealed record RuleObligations(long? MaxLeaseSeconds);

/// <summary>One rule of a bundle, as written.</summary>
/// <param name="Index">Zero-based position in <c>rules</c>.</param>
/// <param name="Id">Unique id within the bundle.</param>
/// <param name="Description">Free text for people.</param>
/// <param name="Effect">Allow or deny.</param>
/// <param name="Match">The declared selector.</param>
/// <param name="Condition">The CEL condition; null means the rule applies whenever the selector matches.</param>
/// <param name="Obligations">Obligations on allow (null for none; never on a deny).</param>
public sealed record PolicyRule(
    int Index,
    string Id,
    string? Description,
    RuleEffect Effect,
    RuleSelector Match,
    string? Condition,
    RuleObligations? Obligations);

/// <summary>One signature over the bundle digest.</summary>
/// <param name="KeyId">The signing key's id (a key of the domain's key set, or a member root for federation).</param>
/// <param name="Signature">Base64url Ed25519 signature over <see cref="PolicyBundleSigning.SignedMessage"/> of the digest.</param>
public sealed record PolicySignature(string KeyId, string Signature);

/// <summary>
/// A parsed, structurally valid policy bundle (format <c>meshbus-policy/v1</c>, see docs/policy.md). Parsing checks the
/// structure and the digest; it does not compile conditions (see CompiledPolicy) or verify signatures
/// (<see cref="PolicyBundleSigning"/>).
/// </summary>
public sealed class PolicyBundle
{
    internal PolicyBundle(
        PolicyScope scope,
        string domain,
        long epoch,
        IReadOnlyList<PolicyRule> rules,
        string digest,
        string? declaredDigest,
        IReadOnlyList<PolicySignature> signatures,
        byte[] canonicalUnsigned)
    {
        Scope = scope;
        Domain = domain;
        Epoch = epoch;
        Rules = rules;
        Digest = digest;
        DeclaredDigest = declaredDigest;
        Signatures = signatures;
        CanonicalUnsigned = canonicalUnsigned;
    }

    /// <summary>The format identifier every bundle carries in <c>format</c>.</summary>
    public const string Format = "meshbus-policy/v1";

    /// <summary>Largest bundle document accepted, in bytes.</summary>
    public const int MaxDocumentBytes = 4 * 1024 * 1024;

    /// <summary>Most rules in one bundle.</summary>
    public const int MaxRules = 10_000;

    /// <summary>Domain, egress or federation.</summary>
    public PolicyScope Scope { get; }

    /// <summary>The domain that owns the bundle (for federation: the federation's name).</summary>
    public string Domain { get; }

    /// <summary>The monotonic version.</summary>
    public long Epoch { get; }

    /// <summary>The rules, in document order.</summary>
    public IReadOnlyList<PolicyRule> Rules { get; }

    /// <summary><c>sha256:&lt;hex&gt;</c> of the RFC 8785 canonical form of the unsigned bundle (computed, never taken from the document).</summary>
    public string Digest { get; }

    /// <summary>The <c>digest</c> member as written (null when absent); parsing refuses a bundle where it differs from <see cref="Digest"/>.</summary>
    public string? DeclaredDigest { get; }

    /// <summary>The signatures as written (not yet verified).</summary>
    public IReadOnlyList<PolicySignature> Signatures { get; }

    /// <summary>The canonical bytes the digest covers (every member except <c>digest</c> and <c>signatures</c>).</summary>
    internal byte[] CanonicalUnsigned { get; }

    /// <summary>Parses and checks a bundle document; throws <see cref="PolicyBundleException"/> listing every problem.</summary>
    public static PolicyBundle Parse(string json) =>
        TryParse(json, out var bundle, out var errors) ? bundle! : throw new PolicyBundleException(errors);

    /// <summary>Parses and checks a bundle document; on failure <paramref name="errors"/> lists every problem found.</summary>
    public static bool TryParse(string json, out PolicyBundle? bundle, out IReadOnlyList<PolicyBundleError> errors)
    {
        ArgumentNullException.ThrowIfNull(json);
        var list = new List<PolicyBundleError>();
        try
        {
            bundle = PolicyBundleParser.Parse(json, list);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json refuses strings it cannot transcode (a lone surrogate escape).
            list.Add(new PolicyBundleError(PolicyBundleErrorKind.Syntax, "", "unreadable string: " + e.Message));
            bundle = null;
        }

        errors = list;
        if (list.Count > 0)
        {
            bundle = null;
        }

        return bundle is not null;
    }

    /// <summary>The scope's name in documents: <c>domain</c>, <c>egress</c> or <c>federation</c>.</summary>
    public static string ScopeName(PolicyScope scope) => scope switch
    {
        PolicyScope.Domain => "domain",
        PolicyScope.Egress => "egress",
        PolicyScope.Federation => "federation",
        _ => throw new ArgumentOutOfRangeException(nameof(scope)),
    };
}
