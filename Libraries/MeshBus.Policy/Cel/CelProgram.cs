namespace MeshBus.Policy.Cel;

/// <summary>A compiled expression. Thread-safe; evaluation never throws for CEL-level errors.</summary>
public sealed class CelProgram
{
    private readonly Node _root;
    private readonly int _locals;
    private readonly CelLimits _limits;

    internal CelProgram(Node root, CelType resultType, int locals, CelLimits limits)
    {
        _root = root;
        ResultType = resultType;
        _locals = locals;
        _limits = limits;
    }

    /// <summary>The type deduced by the checker (<see cref="CelType.Dyn"/> when it depends on the input).</summary>
    public CelType ResultType { get; }

    /// <summary>
    /// Evaluates over <paramref name="activation"/>. CEL errors (overflow, missing key, no matching overload, exceeded
    /// limits, regex timeout) come back as a <see cref="CelError"/> value.
    /// </summary>
    public CelValue Evaluate(CelActivation activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        var ctx = new EvalContext(activation, _locals == 0 ? [] : new CelValue[_locals], _limits);
        try
        {
            return _root.Eval(ref ctx);
        }
        catch (InsufficientExecutionStackException)
        {
            return CelValue.Error("expression too deep to evaluate");
        }
    }

    /// <summary>Evaluates and tells whether the result is exactly <c>true</c>; errors and non-bools are false (fail closed).</summary>
    public bool EvaluateCondition(CelActivation activation) => Evaluate(activation).IsTrue;
}

/// <summary>Per-evaluation state, passed by reference so that evaluation allocates nothing of its own.</summary>
internal struct EvalContext(CelActivation activation, CelValue[] locals, CelLimits limits)
{
    public readonly CelActivation Activation = activation;
    public readonly CelValue[] Locals = locals;
    public readonly CelLimits Limits = limits;
    public long Cost;
    public int Iterations;
}

/// <summary>A compiled expression node.</summary>
internal abstract class Node
{
    public abstract CelValue Eval(ref EvalContext ctx);
}
