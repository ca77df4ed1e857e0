namespace MeshBus.Policy.Cel;

/// <summary>An expression that does not parse, type-check or fit the static limits; the message names the position.</summary>
public sealed class CelCompileException : Exception
{
    /// <summary>Creates the exception for a problem at a 1-based line and column.</summary>
    public CelCompileException(string problem, int line, int column)
        : base($"ERROR: <input>:{line}:{column}: {problem}")
    {
        Problem = problem;
        Line = line;
        Column = column;
    }

    /// <summary>The problem without the position.</summary>
    public string Problem { get; }

    /// <summary>1-based line of the problem.</summary>
    public int Line { get; }

    /// <summary>1-based column of the problem (in UTF-16 code units).</summary>
    public int Column { get; }
}
