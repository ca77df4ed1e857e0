namespace MeshBus.Policy.Cel;

/// <summary>
/// Resource limits of a <see cref="CelEnvironment"/>. Static limits (length, nesting) fail compilation; dynamic ones
/// (iterations, cost) make the evaluation return an error value, which a policy turns into deny.
/// </summary>
public sealed class CelLimits
{
    /// <summary>The default limits.</summary>
    public static CelLimits Default { get; } = new();

    /// <summary>Longest accepted expression, in UTF-16 code units. Default 4096.</summary>
    public int MaxExpressionLength { get; init; } = 4096;

    /// <summary>Deepest accepted nesting of the syntax tree (parentheses, calls, operators). Default 100.</summary>
    public int MaxNestingDepth { get; init; } = 100;

    /// <summary>Most comprehension iterations in one evaluation, all comprehensions together. Default 10,000.</summary>
    public int MaxComprehensionIterations { get; init; } = 10_000;

    /// <summary>
    /// Evaluation cost budget: one unit per evaluated call or comprehension step, plus the length of strings, bytes
    /// and lists produced or scanned. Default 100,000.
    /// </summary>
    public long MaxCost { get; init; } = 100_000;

    /// <summary>Time limit of one <c>matches</c> call. Default 1 s (the engine is linear-time; this is a backstop).</summary>
    public TimeSpan RegexTimeout { get; init; } = TimeSpan.FromSeconds(1);
}
