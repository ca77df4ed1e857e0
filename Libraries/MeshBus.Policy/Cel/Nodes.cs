namespace MeshBus.Policy.Cel;

internal sealed class ConstNode(CelValue value) : Node
{
    public CelValue Value { get; } = value;

    public override CelValue Eval(ref EvalContext ctx) => Value;
}

internal sealed class VarNode(string name) : Node
{
    private readonly CelError _missing = new($"no such attribute: '{name}' is not bound");

    public override CelValue Eval(ref EvalContext ctx) => ctx.Activation.TryGet(name, out var v) ? v : _missing;
}

internal sealed class LocalNode(int slot) : Node
{
    public override CelValue Eval(ref EvalContext ctx) => ctx.Locals[slot];
}

internal sealed class ErrorNode(string message) : Node
{
    private readonly CelError _error = new(message);

    public override CelValue Eval(ref EvalContext ctx) => _error;
}

internal sealed class SelectNode(Node operand, string field) : Node
{
    private readonly CelError _noField = new($"no such key: {field}");

    public override CelValue Eval(ref EvalContext ctx)
    {
        var v = operand.Eval(ref ctx);
        if (v is CelMap m)
        {
            return m.TryGetValue(field, out var r) ? r : _noField;
        }

        return v is CelError ? v : CelValue.Error($"type '{Runtime.TypeName(v)}' does not support field selection");
    }
}

internal sealed class HasNode(Node operand, string field) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var v = operand.Eval(ref ctx);
        if (v is CelMap m)
        {
            return CelValue.Of(m.TryGetValue(field, out _));
        }

        return v is CelError ? v : CelValue.Error($"invalid type for has(): '{Runtime.TypeName(v)}' does not support field selection");
    }
}

internal sealed class AndNode(Node left, Node right) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var a = left.Eval(ref ctx);
        if (ReferenceEquals(a, CelValue.False))
        {
            return a;
        }

        var b = right.Eval(ref ctx);
        if (ReferenceEquals(b, CelValue.False))
        {
            return b;
        }

        if (ReferenceEquals(a, CelValue.True))
        {
            return b is CelBool or CelError ? b : Runtime.NoOverload("_&&_", a, b);
        }

        // a is an error or a non-bool; b is true, an error or a non-bool.
        return a is CelError ? a : b is CelError ? b : Runtime.NoOverload("_&&_", a, b);
    }
}

internal sealed class OrNode(Node left, Node right) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var a = left.Eval(ref ctx);
        if (ReferenceEquals(a, CelValue.True))
        {
            return a;
        }

        var b = right.Eval(ref ctx);
        if (ReferenceEquals(b, CelValue.True))
        {
            return b;
        }

        if (ReferenceEquals(a, CelValue.False))
        {
            return b is CelBool or CelError ? b : Runtime.NoOverload("_||_", a, b);
        }

        return a is CelError ? a : b is CelError ? b : Runtime.NoOverload("_||_", a, b);
    }
}

internal sealed class TernaryNode(Node cond, Node then, Node otherwise) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var c = cond.Eval(ref ctx);
        if (ReferenceEquals(c, CelValue.True))
        {
            return then.Eval(ref ctx);
        }

        if (ReferenceEquals(c, CelValue.False))
        {
            return otherwise.Eval(ref ctx);
        }

        return c is CelError ? c : Runtime.NoOverload("_?_:_", c);
    }
}

internal sealed class UnaryNode(Node operand, Func<CelValue, CelValue> fn) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        ctx.Cost++;
        return fn(operand.Eval(ref ctx));
    }
}

internal sealed class BinaryNode(Node left, Node right, Func<CelValue, CelValue, CelValue> fn) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        ctx.Cost++;
        var a = left.Eval(ref ctx);
        var b = right.Eval(ref ctx);
        return fn(a, b);
    }
}

/// <summary>String concatenation and list building cost their size, so that a cost budget bounds memory too.</summary>
internal sealed class SizedBinaryNode(Node left, Node right, Func<CelValue, CelValue, CelValue> fn) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var a = left.Eval(ref ctx);
        var b = right.Eval(ref ctx);
        var r = fn(a, b);
        ctx.Cost += 1 + r switch
        {
            CelString s => s.Value.Length / 8,
            CelList l => l.Array.Length,
            CelBytes by => by.Bytes.Length / 8,
            _ => 0,
        };
        return ctx.Cost > ctx.Limits.MaxCost ? CostExceeded(ctx.Limits) : r;
    }

    internal static CelError CostExceeded(CelLimits limits) => new($"evaluation cost exceeds the budget of {limits.MaxCost}");
}

internal sealed class RelationNode(Node left, Node right, string op) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        ctx.Cost++;
        var a = left.Eval(ref ctx);
        var b = right.Eval(ref ctx);

        // The common cases first, without the generic dispatch.
        if (a is CelInt x && b is CelInt y)
        {
            var c = x.Value.CompareTo(y.Value);
            return CelValue.Of(op switch
            {
                "_<_" => c < 0,
                "_<=_" => c <= 0,
                "_>_" => c > 0,
                _ => c >= 0,
            });
        }

        return Runtime.Relation(op, a, b);
    }
}

internal sealed class CallNode(Node[] args, Func<CelValue[], CelValue> fn) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        ctx.Cost++;
        var values = new CelValue[args.Length];
        for (var i = 0; i < args.Length; i++)
        {
            values[i] = args[i].Eval(ref ctx);
        }

        return fn(values);
    }
}

internal sealed class ListNode(Node[] items) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var values = new CelValue[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            var v = items[i].Eval(ref ctx);
            if (v is CelError)
            {
                return v;
            }

            values[i] = v;
        }

        ctx.Cost += 1 + items.Length;
        return new CelList(values);
    }
}

internal sealed class MapNode((Node Key, Node Value)[] entries) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var map = new CelMap();
        foreach (var (kn, vn) in entries)
        {
            var k = kn.Eval(ref ctx);
            if (k is CelError)
            {
                return k;
            }

            var v = vn.Eval(ref ctx);
            if (v is CelError)
            {
                return v;
            }

            if (map.TryAdd(k, v) is { } error)
            {
                return CelValue.Error(error);
            }
        }

        ctx.Cost += 1 + entries.Length;
        return map;
    }
}

/// <summary>
/// The comprehension macros, evaluated directly (not by the generic accumulator expansion) with the spec's semantics:
/// <c>all</c>/<c>exists</c> absorb errors when another element decides, <c>exists_one</c>, <c>map</c> and <c>filter</c>
/// propagate them. Every step counts against the iteration limit and the cost budget.
/// </summary>
internal sealed class MacroNode(MacroKind kind, Node range, int slot, Node? predicate, Node? transform, long stepCost) : Node
{
    public override CelValue Eval(ref EvalContext ctx)
    {
        var r = range.Eval(ref ctx);
        CelValue[] items;
        switch (r)
        {
            case CelList l:
                items = l.Array;
                break;
            case CelMap m:
                items = [.. m.Keys];
                break;
            case CelError:
                return r;
            default:
                return CelValue.Error($"expression of type '{Runtime.TypeName(r)}' cannot be the range of a comprehension (must be list or map)");
        }

        var saved = ctx.Locals[slot];
        try
        {
            return kind switch
            {
                MacroKind.All => Quantifier(ref ctx, items, stopOn: CelValue.False),
                MacroKind.Exists => Quantifier(ref ctx, items, stopOn: CelValue.True),
                MacroKind.ExistsOne => ExistsOne(ref ctx, items),
                _ => MapFilter(ref ctx, items),
            };
        }
        finally
        {
            ctx.Locals[slot] = saved;
        }
    }

    private CelError? Step(ref EvalContext ctx)
    {
        ctx.Iterations++;
        ctx.Cost += stepCost;
        if (ctx.Iterations > ctx.Limits.MaxComprehensionIterations)
        {
            return new CelError($"comprehension iterations exceed the limit of {ctx.Limits.MaxComprehensionIterations}");
        }

        return ctx.Cost > ctx.Limits.MaxCost ? SizedBinaryNode.CostExceeded(ctx.Limits) : null;
    }

    private CelValue Quantifier(ref EvalContext ctx, CelValue[] items, CelBool stopOn)
    {
        CelValue? error = null;
        foreach (var item in items)
        {
            if (Step(ref ctx) is { } limit)
            {
                return limit;
            }

            ctx.Locals[slot] = item;
            var v = predicate!.Eval(ref ctx);
            if (ReferenceEquals(v, stopOn))
            {
                return stopOn;
            }

            if (v is not CelBool)
            {
                error ??= v is CelError ? v : Runtime.NoOverload(kind == MacroKind.All ? "_&&_" : "_||_", v);
            }
        }

        return error ?? (ReferenceEquals(stopOn, CelValue.True) ? CelValue.False : CelValue.True);
    }

    private CelValue ExistsOne(ref EvalContext ctx, CelValue[] items)
    {
        var count = 0;
        foreach (var item in items)
        {
            if (Step(ref ctx) is { } limit)
            {
                return limit;
            }

            ctx.Locals[slot] = item;
            var v = predicate!.Eval(ref ctx);
            if (ReferenceEquals(v, CelValue.True))
            {
                count++;
            }
            else if (!ReferenceEquals(v, CelValue.False))
            {
                return v is CelError ? v : Runtime.NoOverload("exists_one", v);
            }
        }

        return CelValue.Of(count == 1);
    }

    private CelValue MapFilter(ref EvalContext ctx, CelValue[] items)
    {
        var result = new List<CelValue>(items.Length);
        foreach (var item in items)
        {
            if (Step(ref ctx) is { } limit)
            {
                return limit;
            }

            ctx.Locals[slot] = item;
            if (predicate is not null)
            {
                var p = predicate.Eval(ref ctx);
                if (ReferenceEquals(p, CelValue.False))
                {
                    continue;
                }

                if (!ReferenceEquals(p, CelValue.True))
                {
                    return p is CelError ? p : Runtime.NoOverload("_?_:_", p);
                }
            }

            var v = transform is null ? item : transform.Eval(ref ctx);
            if (v is CelError)
            {
                return v;
            }

            result.Add(v);
        }

        return new CelList([.. result]);
    }
}
