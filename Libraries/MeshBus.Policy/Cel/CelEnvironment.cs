namespace MeshBus.Policy.Cel;

/// <summary>
/// Declared variables and limits. <see cref="Compile(string)"/> parses, type-checks and compiles an expression once; the
/// resulting <see cref="CelProgram"/> is immutable and may be evaluated concurrently.
/// </summary>
public sealed class CelEnvironment
{
    private CelEnvironment(IReadOnlyDictionary<string, CelType> variables, CelLimits limits)
    {
        Variables = variables;
        Limits = limits;
    }

    /// <summary>The declared variables.</summary>
    public IReadOnlyDictionary<string, CelType> Variables { get; }

    /// <summary>The limits applied to compilation and evaluation.</summary>
    public CelLimits Limits { get; }

    /// <summary>Creates an environment declaring <paramref name="variables"/> (use <see cref="CelType.Dyn"/> for untyped input).</summary>
    public static CelEnvironment Create(IReadOnlyDictionary<string, CelType> variables, CelLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        return new CelEnvironment(new Dictionary<string, CelType>(variables, StringComparer.Ordinal), limits ?? CelLimits.Default);
    }

    /// <summary>
    /// Parses, type-checks and compiles <paramref name="expression"/>. Throws <see cref="CelCompileException"/> (with
    /// the line and column) for syntax errors, undeclared variables, unknown fields, calls with no matching overload,
    /// invalid regular expressions and exceeded static limits.
    /// </summary>
    public CelProgram Compile(string expression) => Compile(expression, new CelCompileOptions());

    /// <summary>Compiles with options (macros off, type-check off for conformance of the parser alone).</summary>
    public CelProgram Compile(string expression, CelCompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(expression);
        ArgumentNullException.ThrowIfNull(options);
        var ast = Parser.Parse(expression, Limits, options.EnableMacros);
        var compiler = new Compiler(expression, Variables, Limits, options.TypeCheck);
        var (node, type) = compiler.CompileRoot(ast);
        return new CelProgram(node, type, compiler.LocalCount, Limits);
    }
}

/// <summary>Compilation options; the defaults are right for policies.</summary>
public sealed class CelCompileOptions
{
    /// <summary>Expand the macros <c>has</c>, <c>all</c>, <c>exists</c>, <c>exists_one</c>, <c>map</c>, <c>filter</c>. Default true.</summary>
    public bool EnableMacros { get; init; } = true;

    /// <summary>
    /// Reject type errors at compile time. Default true. When false, undeclared variables, fields and overloads are
    /// still errors, but at evaluation (as error values).
    /// </summary>
    public bool TypeCheck { get; init; } = true;
}
