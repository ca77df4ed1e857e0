namespace MeshBus.Policy.Cel;

/// <summary>
/// Type-checks a parsed expression against the declared variables and compiles it into a tree of evaluation nodes.
/// Recursion follows the syntax tree, whose height the parser has already bounded.
/// </summary>
internal sealed class Compiler
{
    private static readonly Dictionary<string, CelType> TypeIdents = new(StringComparer.Ordinal)
    {
        ["int"] = CelType.Int,
        ["uint"] = CelType.Uint,
        ["double"] = CelType.Double,
        ["bool"] = CelType.Bool,
        ["string"] = CelType.String,
        ["bytes"] = CelType.Bytes,
        ["null_type"] = CelType.Null,
        ["type"] = CelType.Type,
        ["list"] = CelType.List(CelType.Dyn),
        ["map"] = CelType.Map(CelType.Dyn, CelType.Dyn),
        ["google.protobuf.Timestamp"] = CelType.Timestamp,
        ["google.protobuf.Duration"] = CelType.Duration,
    };

    private static readonly string[] TimestampAccessors =
    [
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfYear", "getDayOfWeek", "getHours", "getMinutes",
        "getSeconds", "getMilliseconds",
    ];

    private readonly string _src;
    private readonly IReadOnlyDictionary<string, CelType> _vars;
    private readonly CelLimits _limits;
    private readonly bool _typeCheck;
    private readonly List<(string Name, int Slot, CelType Type)> _scope = [];

    public Compiler(string src, IReadOnlyDictionary<string, CelType> vars, CelLimits limits, bool typeCheck)
    {
        _src = src;
        _vars = vars;
        _limits = limits;
        _typeCheck = typeCheck;
    }

    public int LocalCount { get; private set; }

    public (Node Node, CelType Type) CompileRoot(Expr e) => Compile(e);

    private CelCompileException Error(Expr e, string message) => Parser.ErrorAt(_src, e.Pos, message);

    /// <summary>A type error: thrown when checking, an error value at evaluation otherwise.</summary>
    private (Node, CelType) TypeError(Expr e, string message) =>
        _typeCheck ? throw Error(e, message) : (new ErrorNode(message), CelType.Dyn);

    private (Node Node, CelType Type) Compile(Expr e)
    {
        switch (e)
        {
            case LiteralExpr lit:
                return (new ConstNode(lit.Value), lit.Value.Type);
            case IdentExpr id:
                return CompileIdent(id, id.Name);
            case SelectExpr sel:
                return CompileSelect(sel);
            case CallExpr call:
                return CompileCall(call);
            case ListExpr list:
                {
                    var nodes = new Node[list.Items.Count];
                    CelType? elem = null;
                    for (var i = 0; i < nodes.Length; i++)
                    {
                        var (n, t) = Compile(list.Items[i]);
                        nodes[i] = n;
                        elem = elem is null ? t : Join(elem, t);
                    }

                    var type = CelType.List(elem ?? CelType.Dyn);
                    return nodes.All(n => n is ConstNode)
                        ? (new ConstNode(new CelList([.. nodes.Select(n => ((ConstNode)n).Value)])), type)
                        : (new ListNode(nodes), type);
                }

            case MapExpr map:
                {
                    var entries = new (Node, Node)[map.Entries.Count];
                    CelType? kt = null;
                    CelType? vt = null;
                    for (var i = 0; i < entries.Length; i++)
                    {
                        var (kn, k) = Compile(map.Entries[i].Key);
                        var (vn, v) = Compile(map.Entries[i].Value);
                        if (k.Kind is not (CelTypeKind.Int or CelTypeKind.Uint or CelTypeKind.Bool or CelTypeKind.String or CelTypeKind.Dyn) && _typeCheck)
                        {
                            throw Error(map.Entries[i].Key, $"unsupported map key type: {k}");
                        }

                        entries[i] = (kn, vn);
                        kt = kt is null ? k : Join(kt, k);
                        vt = vt is null ? v : Join(vt, v);
                    }

                    return (new MapNode(entries), CelType.Map(kt ?? CelType.Dyn, vt ?? CelType.Dyn));
                }

            case MessageExpr msg:
                throw Error(msg, $"message construction is not supported: '{msg.TypeName}'");
            case MacroExpr macro:
                return CompileMacro(macro);
            default:
                throw Error(e, "unsupported expression");
        }
    }

    private static CelType Join(CelType a, CelType b) => a.Equals(b) ? a : CelType.Dyn;

    private (Node, CelType) CompileIdent(Expr e, string name)
    {
        var lookup = name.StartsWith('.') ? name[1..] : name;
        if (!name.StartsWith('.'))
        {
            for (var i = _scope.Count - 1; i >= 0; i--)
            {
                if (_scope[i].Name == name)
                {
                    return (new LocalNode(_scope[i].Slot), _scope[i].Type);
                }
            }
        }

        if (_vars.TryGetValue(lookup, out var type))
        {
            return (new VarNode(lookup), type);
        }

        if (TypeIdents.TryGetValue(lookup, out var t))
        {
            return (new ConstNode(new CelTypeValue(t.Name)), CelType.Type);
        }

        if (_typeCheck)
        {
            throw Error(e, $"undeclared reference to '{lookup}' (in container '')");
        }

        return (new VarNode(lookup), CelType.Dyn);
    }

    private static string? QualifiedName(Expr e) => e switch
    {
        IdentExpr i => i.Name,
        SelectExpr { TestOnly: false } s when QualifiedName(s.Operand) is { } q => q + "." + s.Field,
        _ => null,
    };

    private bool IsLocal(string name) => _scope.Any(s => s.Name == name);

    private (Node, CelType) CompileSelect(SelectExpr sel)
    {
        // A dotted name may be one declared variable (or type name), e.g. `a.b.c` declared as such.
        if (!sel.TestOnly && QualifiedName(sel) is { } qualified && !IsLocal(qualified.Split('.')[0]))
        {
            var lookup = qualified.TrimStart('.');
            if (_vars.ContainsKey(lookup) || TypeIdents.ContainsKey(lookup))
            {
                return CompileIdent(sel, qualified);
            }
        }

        var (operand, type) = Compile(sel.Operand);
        CelType result;
        switch (type.Kind)
        {
            case CelTypeKind.Object:
                if (!type.Fields.TryGetValue(sel.Field, out result!))
                {
                    return TypeError(sel, $"undefined field '{sel.Field}' of '{type.Name}'");
                }

                break;
            case CelTypeKind.Map:
                if (type.KeyType!.Kind is not (CelTypeKind.String or CelTypeKind.Dyn))
                {
                    return TypeError(sel, $"type '{type}' does not support field selection");
                }

                result = type.ValueType!;
                break;
            case CelTypeKind.Dyn:
                result = CelType.Dyn;
                break;
            default:
                return TypeError(sel, $"type '{type}' does not support field selection");
        }

        return sel.TestOnly ? (new HasNode(operand, sel.Field), CelType.Bool) : (new SelectNode(operand, sel.Field), result);
    }

    private (Node, CelType) CompileMacro(MacroExpr m)
    {
        var (range, rangeType) = Compile(m.Range);
        var elem = rangeType.Kind switch
        {
            CelTypeKind.List => rangeType.ElementType!,
            CelTypeKind.Map => rangeType.KeyType!,
            CelTypeKind.Dyn => CelType.Dyn,
            CelTypeKind.Object => CelType.String,
            _ => null,
        };
        if (elem is null)
        {
            if (_typeCheck)
            {
                throw Error(m.Range, $"expression of type '{rangeType}' cannot be the range of a comprehension (must be list, map, or dynamic)");
            }

            elem = CelType.Dyn;
        }

        var slot = _scope.Count;
        _scope.Add((m.Variable, slot, elem));
        LocalCount = Math.Max(LocalCount, _scope.Count);
        try
        {
            Node? predicate = null;
            Node? transform = null;
            CelType? transformType = null;
            long cost = 1;
            if (m.Predicate is not null)
            {
                var (p, pt) = Compile(m.Predicate);
                if (_typeCheck && pt.Kind is not (CelTypeKind.Bool or CelTypeKind.Dyn))
                {
                    throw Error(m.Predicate, $"expected bool predicate, found '{pt}'");
                }

                predicate = p;
                cost += NodeCount(m.Predicate);
            }

            if (m.Transform is not null)
            {
                (transform, transformType) = Compile(m.Transform);
                cost += NodeCount(m.Transform);
            }

            var type = m.Kind switch
            {
                MacroKind.Map => CelType.List(transformType!),
                MacroKind.Filter => CelType.List(elem),
                _ => CelType.Bool,
            };
            return (new MacroNode(m.Kind, range, slot, predicate, transform, cost), type);
        }
        finally
        {
            _scope.RemoveAt(_scope.Count - 1);
        }
    }

    private static int NodeCount(Expr e) => e switch
    {
        SelectExpr s => 1 + NodeCount(s.Operand),
        CallExpr c => 1 + (c.Target is null ? 0 : NodeCount(c.Target)) + c.Args.Sum(NodeCount),
        ListExpr l => 1 + l.Items.Sum(NodeCount),
        MapExpr m => 1 + m.Entries.Sum(x => NodeCount(x.Key) + NodeCount(x.Value)),
        MacroExpr m => 1 + NodeCount(m.Range) + (m.Predicate is null ? 0 : NodeCount(m.Predicate)) + (m.Transform is null ? 0 : NodeCount(m.Transform)),
        _ => 1,
    };

    private (Node, CelType) CompileCall(CallExpr call)
    {
        var args = new List<(Node Node, CelType Type)>();
        if (call.Target is not null)
        {
            args.Add(Compile(call.Target));
        }

        foreach (var a in call.Args)
        {
            args.Add(Compile(a));
        }

        var nodes = args.Select(a => a.Node).ToArray();
        var types = args.Select(a => a.Type).ToArray();
        var receiver = call.Target is not null;
        var fn = call.Function;

        switch (fn)
        {
            case "_&&_" or "_||_":
                RequireBool(call, types[0], call.Args[0]);
                RequireBool(call, types[1], call.Args[1]);
                return (fn == "_&&_" ? new AndNode(nodes[0], nodes[1]) : new OrNode(nodes[0], nodes[1]), CelType.Bool);
            case "_?_:_":
                RequireBool(call, types[0], call.Args[0]);
                return (new TernaryNode(nodes[0], nodes[1], nodes[2]), Join(types[1], types[2]));
            case "_==_" or "_!=_":
                if (_typeCheck && !Comparable(types[0], types[1]))
                {
                    throw NoOverload(call, fn, types);
                }

                return (new BinaryNode(nodes[0], nodes[1], fn == "_==_" ? Runtime.Equal : Runtime.NotEqual), CelType.Bool);
            case "_<_" or "_<=_" or "_>_" or "_>=_":
                Resolve(call, fn, types);
                return (new RelationNode(nodes[0], nodes[1], fn), CelType.Bool);
            case "_[_]":
                return (new BinaryNode(nodes[0], nodes[1], Runtime.Index), IndexType(call, types[0], types[1]));
            case "@in":
                if (_typeCheck && !InAllowed(types[0], types[1]))
                {
                    throw NoOverload(call, fn, types);
                }

                return (new BinaryNode(nodes[0], nodes[1], Runtime.In), CelType.Bool);
            case "_+_":
                {
                    var t = Resolve(call, fn, types);
                    if (t.Kind == CelTypeKind.List && types[0].Kind == CelTypeKind.List && types[1].Kind == CelTypeKind.List)
                    {
                        t = CelType.List(Join(types[0].ElementType!, types[1].ElementType!));
                    }

                    var sized = types.Any(x => x.Kind is CelTypeKind.String or CelTypeKind.List or CelTypeKind.Bytes or CelTypeKind.Dyn);
                    return (sized ? new SizedBinaryNode(nodes[0], nodes[1], Runtime.Add) : new BinaryNode(nodes[0], nodes[1], Runtime.Add), t);
                }

            case "_-_":
                return (new BinaryNode(nodes[0], nodes[1], Runtime.Subtract), Resolve(call, fn, types));
            case "_*_":
                return (new BinaryNode(nodes[0], nodes[1], Runtime.Multiply), Resolve(call, fn, types));
            case "_/_":
                return (new BinaryNode(nodes[0], nodes[1], Runtime.Divide), Resolve(call, fn, types));
            case "_%_":
                return (new BinaryNode(nodes[0], nodes[1], Runtime.Modulo), Resolve(call, fn, types));
            case "-_":
                return (new UnaryNode(nodes[0], Runtime.Negate), Resolve(call, fn, types));
            case "!_":
                return (new UnaryNode(nodes[0], Runtime.Not), Resolve(call, fn, types));
        }

        var key = (receiver ? "." : string.Empty) + fn;
        if (!Overloads.ContainsKey(key))
        {
            if (_typeCheck || !Overloads.ContainsKey((receiver ? string.Empty : ".") + fn))
            {
                if (_typeCheck)
                {
                    throw Error(call, $"undeclared reference to '{fn}' (in container '')");
                }

                return (new ErrorNode($"no such overload: {fn}"), CelType.Dyn);
            }
        }

        var type = Overloads.ContainsKey(key) ? Resolve(call, key, types) : CelType.Dyn;
        Node node = (fn, nodes.Length) switch
        {
            ("size", 1) => new UnaryNode(nodes[0], Runtime.Size),
            ("contains", 2) => new BinaryNode(nodes[0], nodes[1], Runtime.Contains),
            ("startsWith", 2) => new BinaryNode(nodes[0], nodes[1], Runtime.StartsWith),
            ("endsWith", 2) => new BinaryNode(nodes[0], nodes[1], Runtime.EndsWith),
            ("matches", 2) => CompileMatches(call, nodes),
            ("int", 1) => new UnaryNode(nodes[0], Runtime.ToInt),
            ("uint", 1) => new UnaryNode(nodes[0], Runtime.ToUint),
            ("double", 1) => new UnaryNode(nodes[0], Runtime.ToDouble),
            ("string", 1) => new UnaryNode(nodes[0], Runtime.ToStringValue),
            ("bytes", 1) => new UnaryNode(nodes[0], Runtime.ToBytes),
            ("bool", 1) => new UnaryNode(nodes[0], Runtime.ToBool),
            ("timestamp", 1) => new UnaryNode(nodes[0], Runtime.ToTimestamp),
            ("duration", 1) => new UnaryNode(nodes[0], Runtime.ToDuration),
            ("type", 1) => new UnaryNode(nodes[0], Runtime.TypeOf),
            ("dyn", 1) => nodes[0],
            (_, 1) when TimestampAccessors.Contains(fn) => new UnaryNode(nodes[0], v => Runtime.TimeAccessor(fn, v, null)),
            (_, 2) when TimestampAccessors.Contains(fn) => new BinaryNode(nodes[0], nodes[1], (v, tz) => Runtime.TimeAccessor(fn, v, tz)),
            _ => new ErrorNode($"no such overload: {fn}"),
        };

        // Fold conversions of constants at compile time; a failing one stays an evaluation error, as the spec says.
        if (node is UnaryNode && nodes[0] is ConstNode c && fn is "timestamp" or "duration" or "int" or "uint" or "double" or "string" or "bytes" or "bool")
        {
            var scratch = new EvalContext(CelActivation.Create(new Dictionary<string, CelValue>()), [], _limits);
            var folded = node.Eval(ref scratch);
            if (folded is not CelError)
            {
                return (new ConstNode(folded), type);
            }
        }

        return (node, type);
    }

    private Node CompileMatches(CallExpr call, Node[] nodes)
    {
        var timeout = _limits.RegexTimeout;
        if (nodes[1] is ConstNode { Value: CelString pattern })
        {
            var regex = CelRegex.TryCompile(pattern.Value, timeout, out var error);
            if (regex is null)
            {
                if (_typeCheck)
                {
                    throw Error(call.Args[^1], error!);
                }

                return new ErrorNode(error!);
            }

            return new UnaryNode(nodes[0], s => s is CelString str ? CelRegex.Match(regex, str.Value) : s is CelError ? s : Runtime.NoOverload("matches", s));
        }

        return new BinaryNode(nodes[0], nodes[1], (s, p) => CelRegex.Matches(s, p, timeout));
    }

    private void RequireBool(CallExpr call, CelType t, Expr arg)
    {
        if (_typeCheck && t.Kind is not (CelTypeKind.Bool or CelTypeKind.Dyn))
        {
            throw Error(arg, $"found no matching overload for '{call.Function}': expected bool, found '{t}'");
        }
    }

    private static bool Comparable(CelType a, CelType b)
    {
        if (a.Kind == CelTypeKind.Dyn || b.Kind == CelTypeKind.Dyn)
        {
            return true;
        }

        if (a.Kind == CelTypeKind.Null || b.Kind == CelTypeKind.Null)
        {
            var other = a.Kind == CelTypeKind.Null ? b : a;
            return other.Kind is CelTypeKind.Null or CelTypeKind.Object or CelTypeKind.Timestamp or CelTypeKind.Duration;
        }

        if (a.Kind != b.Kind)
        {
            return (a.Kind == CelTypeKind.Object && b.Kind == CelTypeKind.Map) || (a.Kind == CelTypeKind.Map && b.Kind == CelTypeKind.Object);
        }

        return a.Kind switch
        {
            CelTypeKind.List => Comparable(a.ElementType!, b.ElementType!),
            CelTypeKind.Map => Comparable(a.KeyType!, b.KeyType!) && Comparable(a.ValueType!, b.ValueType!),
            _ => true,
        };
    }

    private static bool IsNumeric(CelType t) => t.Kind is CelTypeKind.Int or CelTypeKind.Uint or CelTypeKind.Double;

    private static bool InAllowed(CelType item, CelType container) => container.Kind switch
    {
        CelTypeKind.Dyn => true,
        CelTypeKind.List => Comparable(item, container.ElementType!) || (IsNumeric(item) && IsNumeric(container.ElementType!)),
        CelTypeKind.Map => Comparable(item, container.KeyType!) || (IsNumeric(item) && IsNumeric(container.KeyType!)),
        CelTypeKind.Object => item.Kind is CelTypeKind.String or CelTypeKind.Dyn,
        _ => false,
    };

    private CelType IndexType(CallExpr call, CelType container, CelType index)
    {
        switch (container.Kind)
        {
            case CelTypeKind.List when index.Kind is CelTypeKind.Int or CelTypeKind.Uint or CelTypeKind.Double or CelTypeKind.Dyn:
                return container.ElementType!;
            case CelTypeKind.Map when Comparable(index, container.KeyType!) || (IsNumeric(index) && IsNumeric(container.KeyType!)):
                return container.ValueType!;
            case CelTypeKind.Object when index.Kind is CelTypeKind.String or CelTypeKind.Dyn:
            case CelTypeKind.Dyn:
                return CelType.Dyn;
            default:
                return _typeCheck ? throw NoOverload(call, "_[_]", [container, index]) : CelType.Dyn;
        }
    }

    private CelCompileException NoOverload(CallExpr call, string fn, CelType[] types) =>
        Error(call, $"found no matching overload for '{fn.TrimStart('.')}' applied to '({string.Join(", ", types.Select(t => t.ToString()))})'");

    /// <summary>Finds the overloads whose parameters accept the argument types; the result type when they agree.</summary>
    private CelType Resolve(CallExpr call, string key, CelType[] types)
    {
        if (!Overloads.TryGetValue(key, out var candidates))
        {
            return CelType.Dyn;
        }

        CelType? result = null;
        var found = false;
        foreach (var (ps, r) in candidates)
        {
            if (ps.Length != types.Length)
            {
                continue;
            }

            var ok = true;
            for (var i = 0; i < ps.Length && ok; i++)
            {
                ok = Accepts(ps[i], types[i]);
            }

            if (ok)
            {
                result = !found ? r : result!.Equals(r) ? result : CelType.Dyn;
                found = true;
            }
        }

        if (!found)
        {
            if (_typeCheck)
            {
                throw NoOverload(call, key, types);
            }

            return CelType.Dyn;
        }

        return result!;
    }

    private static bool Accepts(CelType param, CelType arg) =>
        param.Kind == CelTypeKind.Dyn || arg.Kind == CelTypeKind.Dyn || param.Kind == arg.Kind
        || (param.Kind == CelTypeKind.Map && arg.Kind == CelTypeKind.Object);

    private static readonly Dictionary<string, (CelType[] Params, CelType Result)[]> Overloads = BuildOverloads();

    private static Dictionary<string, (CelType[] Params, CelType Result)[]> BuildOverloads()
    {
        var any = CelType.Dyn;
        var list = CelType.List(CelType.Dyn);
        var map = CelType.Map(CelType.Dyn, CelType.Dyn);
        CelType i = CelType.Int, u = CelType.Uint, d = CelType.Double, s = CelType.String, b = CelType.Bool, by = CelType.Bytes,
            ts = CelType.Timestamp, du = CelType.Duration;
        var numeric = new[] { i, u, d };
        var rel = new List<(CelType[], CelType)>();
        foreach (var x in numeric)
        {
            foreach (var y in numeric)
            {
                rel.Add(([x, y], b));
            }
        }

        rel.AddRange([([s, s], b), ([by, by], b), ([b, b], b), ([ts, ts], b), ([du, du], b)]);
        var arith = new (CelType[], CelType)[] { ([i, i], i), ([u, u], u), ([d, d], d) };
        var accessors = new List<(CelType[], CelType)> { ([ts], i), ([ts, s], i) };
        var durationAccessors = new List<(CelType[], CelType)>(accessors) { ([du], i) };
        var o = new Dictionary<string, (CelType[], CelType)[]>(StringComparer.Ordinal)
        {
            ["_<_"] = [.. rel],
            ["_<=_"] = [.. rel],
            ["_>_"] = [.. rel],
            ["_>=_"] = [.. rel],
            ["_+_"] = [.. arith, ([s, s], s), ([by, by], by), ([list, list], list), ([ts, du], ts), ([du, ts], ts), ([du, du], du)],
            ["_-_"] = [.. arith, ([ts, ts], du), ([ts, du], ts), ([du, du], du)],
            ["_*_"] = arith,
            ["_/_"] = arith,
            ["_%_"] = [([i, i], i), ([u, u], u)],
            ["-_"] = [([i], i), ([d], d)],
            ["!_"] = [([b], b)],
            ["size"] = [([s], i), ([by], i), ([list], i), ([map], i)],
            [".size"] = [([s], i), ([by], i), ([list], i), ([map], i)],
            [".contains"] = [([s, s], b)],
            [".startsWith"] = [([s, s], b)],
            [".endsWith"] = [([s, s], b)],
            ["matches"] = [([s, s], b)],
            [".matches"] = [([s, s], b)],
            ["int"] = [([i], i), ([u], i), ([d], i), ([s], i), ([ts], i)],
            ["uint"] = [([i], u), ([u], u), ([d], u), ([s], u)],
            ["double"] = [([i], d), ([u], d), ([d], d), ([s], d)],
            ["string"] = [([i], s), ([u], s), ([d], s), ([s], s), ([b], s), ([by], s), ([ts], s), ([du], s)],
            ["bytes"] = [([by], by), ([s], by)],
            ["bool"] = [([b], b), ([s], b)],
            ["timestamp"] = [([ts], ts), ([s], ts), ([i], ts)],
            ["duration"] = [([du], du), ([s], du)],
            ["type"] = [([any], CelType.Type)],
            ["dyn"] = [([any], any)],
        };
        foreach (var name in TimestampAccessors)
        {
            o["." + name] = name is "getHours" or "getMinutes" or "getSeconds" or "getMilliseconds" ? [.. durationAccessors] : [.. accessors];
        }

        return o;
    }
}
