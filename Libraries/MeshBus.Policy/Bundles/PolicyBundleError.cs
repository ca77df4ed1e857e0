namespace MeshBus.Policy.Bundles;

/// <summary>What kind of problem a bundle has. Every kind refuses the whole bundle.</summary>
public enum PolicyBundleErrorKind
{
    /// <summary>The document is not JSON, is too large or too deep.</summary>
    Syntax,

    /// <summary>A member is missing, unknown, duplicated or of the wrong type or value.</summary>
    Schema,

    /// <summary>Two rules share an id.</summary>
    DuplicateRule,

    /// <summary>A match selector is empty or a resource pattern is malformed.</summary>
    Selector,

    /// <summary>A condition does not parse or type-check against the input schema, or is not boolean.</summary>
    Condition,

    /// <summary>The declared digest is not the digest of the bundle's canonical form (tampering).</summary>
    DigestMismatch,

    /// <summary>A signature is malformed, does not verify, or a required signer is missing.</summary>
    Signature,

    /// <summary>The epoch is lower than the loaded one, or equal with a different digest.</summary>
    EpochRollback,

    /// <summary>The bundle is not for the scope or domain the caller expected.</summary>
    WrongScope,
}

/// <summary>One problem in a policy bundle, located by JSON path and, for conditions, line and column inside the expression.</summary>
/// <param name="Kind">What kind of problem.</param>
/// <param name="Path">Where in the document, e.g. <c>rules[3].condition</c> (empty for the whole document).</param>
/// <param name="Message">What is wrong, for a human.</param>
/// <param name="RuleId">The id of the rule concerned, when there is one.</param>
/// <param name="RuleIndex">The zero-based position of the rule concerned in <c>rules</c>.</param>
/// <param name="Line">One-based line (inside the condition for condition errors, in the document for syntax errors).</param>
/// <param name="Column">One-based column, with <paramref name="Line"/>.</param>
public sealed record PolicyBundleError(
    PolicyBundleErrorKind Kind,
    string Path,
    string Message,
    string? RuleId = null,
    int? RuleIndex = null,
    int? Line = null,
    int? Column = null)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var where = Path.Length == 0 ? "bundle" : Path;
        if (RuleId is not null)
        {
            where += $" (rule '{RuleId}')";
        }

        if (Line is not null)
        {
            where += $" {Line}:{Column}";
        }

        return $"{where}: {Message}";
    }
}

/// <summary>A bundle was refused; <see cref="Errors"/> lists every problem found, not only the first.</summary>
public sealed class PolicyBundleException : Exception
{
    /// <summary>Creates the exception from the problems found.</summary>
    public PolicyBundleException(IReadOnlyList<PolicyBundleError> errors)
        : base(Describe(errors)) => Errors = errors;

    /// <summary>Creates the exception from one problem.</summary>
    public PolicyBundleException(PolicyBundleError error)
        : this([error])
    {
    }

    /// <summary>Every problem found.</summary>
    public IReadOnlyList<PolicyBundleError> Errors { get; }

    private static string Describe(IReadOnlyList<PolicyBundleError> errors) =>
        errors.Count == 1
            ? "policy bundle refused: " + errors[0]
            : $"policy bundle refused ({errors.Count} errors): " + string.Join("; ", errors);
}
