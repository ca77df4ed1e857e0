namespace MeshBus.Policy.Cel;

/// <summary>A parsed expression; <see cref="Pos"/> is the offset in the source, <see cref="Depth"/> the subtree height.</summary>
internal abstract class Expr(int pos, int depth)
{
    public int Pos { get; } = pos;

    public int Depth { get; } = depth;

    protected static int DepthOf(params Expr?[] children)
    {
        var d = 0;
        foreach (var c in children)
        {
            if (c is not null && c.Depth > d)
            {
                d = c.Depth;
            }
        }

        return d + 1;
    }

    protected static int DepthOf(IEnumerable<Expr> children) => DepthOf([.. children]);
}

internal sealed class LiteralExpr(int pos, CelValue value) : Expr(pos, 1)
{
    public CelValue Value { get; } = value;
}

internal sealed class IdentExpr(int pos, string name) : Expr(pos, 1)
{
    public string Name { get; } = name;
}

internal sealed class SelectExpr(int pos, Expr operand, string field, bool testOnly) : Expr(pos, DepthOf(operand))
{
    public Expr Operand { get; } = operand;

    public string Field { get; } = field;

    /// <summary>The <c>has()</c> form: tests presence instead of reading.</summary>
    public bool TestOnly { get; } = testOnly;
}

internal sealed class CallExpr(int pos, Expr? target, string function, IReadOnlyList<Expr> args) : Expr(pos, DepthOf([target, .. args]))
{
    public Expr? Target { get; } = target;

    public string Function { get; } = function;

    public IReadOnlyList<Expr> Args { get; } = args;
}

internal sealed class ListExpr(int pos, IReadOnlyList<Expr> items) : Expr(pos, DepthOf(items))
{
    public IReadOnlyList<Expr> Items { get; } = items;
}

internal sealed class MapExpr(int pos, IReadOnlyList<(Expr Key, Expr Value)> entries) : Expr(pos, DepthOf(entries.SelectMany(e => new[] { e.Key, e.Value })))
{
    public IReadOnlyList<(Expr Key, Expr Value)> Entries { get; } = entries;
}

/// <summary>A message construction <c>Name{field: value}</c>: parsed, then rejected by the checker (no message types).</summary>
internal sealed class MessageExpr(int pos, string typeName, IReadOnlyList<(string Field, Expr Value)> fields) : Expr(pos, DepthOf(fields.Select(f => f.Value)))
{
    public string TypeName { get; } = typeName;

    public IReadOnlyList<(string Field, Expr Value)> Fields { get; } = fields;
}

internal enum MacroKind
{
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
}

/// <summary>A comprehension macro over a list or map range.</summary>
internal sealed class MacroExpr(int pos, MacroKind kind, Expr range, string variable, Expr? predicate, Expr? transform)
    : Expr(pos, DepthOf(range, predicate, transform))
{
    public MacroKind Kind { get; } = kind;

    public Expr Range { get; } = range;

    public string Variable { get; } = variable;

    public Expr? Predicate { get; } = predicate;

    public Expr? Transform { get; } = transform;
}
