using System.Globalization;
using System.Text;

namespace MeshBus.Policy.Cel;

/// <summary>
/// Recursive-descent parser for the CEL grammar (google/cel-spec doc/langdef.md). Recursion is bounded: every nested
/// expression and every tree level counts against <see cref="CelLimits.MaxNestingDepth"/> before recursing further.
/// </summary>
internal sealed class Parser
{
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal)
    {
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package",
        "namespace", "return", "var", "void", "while",
    };

    private readonly string _src;
    private readonly int _maxDepth;
    private readonly bool _macros;
    private int _pos;
    private int _depth;

    private Parser(string src, int maxDepth, bool macros)
    {
        _src = src;
        _maxDepth = maxDepth;
        _macros = macros;
    }

    public static Expr Parse(string source, CelLimits limits, bool macros = true)
    {
        if (source.Length > limits.MaxExpressionLength)
        {
            throw new CelCompileException($"expression is {source.Length} characters long, more than the limit of {limits.MaxExpressionLength}", 1, 1);
        }

        var p = new Parser(source, limits.MaxNestingDepth, macros);
        var e = p.ParseExpr();
        p.SkipSpace();
        if (p._pos < source.Length)
        {
            throw p.Error(p._pos, $"Syntax error: unexpected '{source[p._pos]}'");
        }

        return e;
    }

    public static CelCompileException ErrorAt(string src, int pos, string message)
    {
        var line = 1;
        var col = 1;
        for (var i = 0; i < pos && i < src.Length; i++)
        {
            if (src[i] == '\n')
            {
                line++;
                col = 1;
            }
            else
            {
                col++;
            }
        }

        return new CelCompileException(message, line, col);
    }

    private CelCompileException Error(int pos, string message) => ErrorAt(_src, pos, message);

    private T Check<T>(T e)
        where T : Expr
    {
        if (e.Depth > _maxDepth)
        {
            throw Error(e.Pos, $"expression nesting exceeds the limit of {_maxDepth}");
        }

        return e;
    }

    private void Enter()
    {
        if (++_depth > _maxDepth)
        {
            throw Error(_pos, $"expression nesting exceeds the limit of {_maxDepth}");
        }
    }

    private Expr ParseExpr()
    {
        Enter();
        try
        {
            var cond = ParseOr();
            SkipSpace();
            if (!Accept("?"))
            {
                return cond;
            }

            var pos = _pos - 1;
            var a = ParseOr();
            Expect(":");
            var b = ParseExpr();
            return Check(new CallExpr(pos, null, "_?_:_", [cond, a, b]));
        }
        finally
        {
            _depth--;
        }
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (true)
        {
            SkipSpace();
            var pos = _pos;
            if (!Accept("||"))
            {
                return left;
            }

            left = Check(new CallExpr(pos, null, "_||_", [left, ParseAnd()]));
        }
    }

    private Expr ParseAnd()
    {
        var left = ParseRelation();
        while (true)
        {
            SkipSpace();
            var pos = _pos;
            if (!Accept("&&"))
            {
                return left;
            }

            left = Check(new CallExpr(pos, null, "_&&_", [left, ParseRelation()]));
        }
    }

    private Expr ParseRelation()
    {
        var left = ParseAddition();
        while (true)
        {
            SkipSpace();
            var pos = _pos;
            string? op = null;
            if (Accept("=="))
            {
                op = "_==_";
            }
            else if (Accept("!="))
            {
                op = "_!=_";
            }
            else if (Accept("<="))
            {
                op = "_<=_";
            }
            else if (Accept(">="))
            {
                op = "_>=_";
            }
            else if (Accept("<"))
            {
                op = "_<_";
            }
            else if (Accept(">"))
            {
                op = "_>_";
            }
            else if (AcceptKeyword("in"))
            {
                op = "@in";
            }

            if (op is null)
            {
                return left;
            }

            left = Check(new CallExpr(pos, null, op, [left, ParseAddition()]));
        }
    }

    private Expr ParseAddition()
    {
        var left = ParseMultiplication();
        while (true)
        {
            SkipSpace();
            var pos = _pos;
            string op;
            if (Accept("+"))
            {
                op = "_+_";
            }
            else if (Accept("-"))
            {
                op = "_-_";
            }
            else
            {
                return left;
            }

            left = Check(new CallExpr(pos, null, op, [left, ParseMultiplication()]));
        }
    }

    private Expr ParseMultiplication()
    {
        var left = ParseUnary();
        while (true)
        {
            SkipSpace();
            var pos = _pos;
            string op;
            if (Accept("*"))
            {
                op = "_*_";
            }
            else if (Accept("/"))
            {
                op = "_/_";
            }
            else if (Accept("%"))
            {
                op = "_%_";
            }
            else
            {
                return left;
            }

            left = Check(new CallExpr(pos, null, op, [left, ParseUnary()]));
        }
    }

    private Expr ParseUnary()
    {
        SkipSpace();
        var start = _pos;
        if (Peek('!') || Peek('-'))
        {
            var ops = new List<(int Pos, char Op)>();
            while (true)
            {
                SkipSpace();
                if (Peek('!') && !PeekAt(1, '='))
                {
                    ops.Add((_pos, '!'));
                    _pos++;
                }
                else if (Peek('-'))
                {
                    ops.Add((_pos, '-'));
                    _pos++;
                }
                else
                {
                    break;
                }

                if (ops.Count > _maxDepth)
                {
                    throw Error(start, $"expression nesting exceeds the limit of {_maxDepth}");
                }
            }

            Expr operand;
            SkipSpace();
            var last = ops[^1];
            if (last.Op == '-' && _pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
            {
                // A negative numeric literal: -9223372036854775808 is a valid int.
                operand = ParseMemberSuffixes(ParseNumber(negative: true));
                ops.RemoveAt(ops.Count - 1);
            }
            else
            {
                operand = ParseMember();
            }

            for (var i = ops.Count - 1; i >= 0; i--)
            {
                operand = Check(new CallExpr(ops[i].Pos, null, ops[i].Op == '!' ? "!_" : "-_", [operand]));
            }

            return operand;
        }

        return ParseMember();
    }

    private Expr ParseMember() => ParseMemberSuffixes(ParsePrimary());

    private Expr ParseMemberSuffixes(Expr e)
    {
        while (true)
        {
            SkipSpace();
            var pos = _pos;
            if (Accept("."))
            {
                SkipSpace();
                var name = ParseSelector();
                SkipSpace();
                if (Peek('('))
                {
                    _pos++;
                    var args = ParseExprList(')');
                    e = Check(MakeCall(pos, e, name, args));
                }
                else
                {
                    e = Check(new SelectExpr(pos, e, name, false));
                }
            }
            else if (Accept("["))
            {
                Enter();
                var index = ParseExpr();
                _depth--;
                Expect("]");
                e = Check(new CallExpr(pos, null, "_[_]", [e, index]));
            }
            else if (Peek('{') && IsQualifiedName(e))
            {
                _pos++;
                e = Check(ParseMessage(e.Pos, QualifiedName(e)));
            }
            else
            {
                return e;
            }
        }
    }

    private static bool IsQualifiedName(Expr e) => e is IdentExpr || (e is SelectExpr { TestOnly: false } s && IsQualifiedName(s.Operand));

    private static string QualifiedName(Expr e) => e is IdentExpr i ? i.Name : QualifiedName(((SelectExpr)e).Operand) + "." + ((SelectExpr)e).Field;

    private MessageExpr ParseMessage(int pos, string typeName)
    {
        var fields = new List<(string, Expr)>();
        SkipSpace();
        while (!Accept("}"))
        {
            SkipSpace();
            var name = ParseSelector();
            Expect(":");
            Enter();
            fields.Add((name, ParseExpr()));
            _depth--;
            SkipSpace();
            if (!Accept(","))
            {
                Expect("}");
                break;
            }

            SkipSpace();
        }

        return new MessageExpr(pos, typeName, fields);
    }

    private string ParseSelector()
    {
        if (Peek('`'))
        {
            var end = _src.IndexOf('`', _pos + 1);
            if (end < 0)
            {
                throw Error(_pos, "Syntax error: unterminated quoted identifier");
            }

            var name = _src[(_pos + 1)..end];
            _pos = end + 1;
            return name;
        }

        var start = _pos;
        var id = ParseIdentifier() ?? throw Error(start, "Syntax error: expected an identifier");
        if (id is "true" or "false" or "null" or "in")
        {
            throw Error(start, $"Syntax error: reserved identifier '{id}'");
        }

        return id;
    }

    private string? ParseIdentifier()
    {
        if (_pos >= _src.Length || !(char.IsAsciiLetter(_src[_pos]) || _src[_pos] == '_'))
        {
            return null;
        }

        var start = _pos;
        while (_pos < _src.Length && (char.IsAsciiLetterOrDigit(_src[_pos]) || _src[_pos] == '_'))
        {
            _pos++;
        }

        return _src[start.._pos];
    }

    private Expr MakeCall(int pos, Expr? target, string name, List<Expr> args)
    {
        if (!_macros)
        {
            return new CallExpr(pos, target, name, args);
        }

        if (target is null && name == "has" && args.Count == 1)
        {
            if (args[0] is SelectExpr { TestOnly: false } s)
            {
                return new SelectExpr(pos, s.Operand, s.Field, true);
            }

            throw Error(pos, "invalid argument to has() macro");
        }

        if (target is not null)
        {
            MacroKind? kind = (name, args.Count) switch
            {
                ("all", 2) => MacroKind.All,
                ("exists", 2) => MacroKind.Exists,
                ("exists_one", 2) => MacroKind.ExistsOne,
                ("map", 2 or 3) => MacroKind.Map,
                ("filter", 2) => MacroKind.Filter,
                _ => null,
            };
            if (kind is { } k)
            {
                if (args[0] is not IdentExpr v)
                {
                    throw Error(args[0].Pos, "argument is not an identifier");
                }

                return k switch
                {
                    MacroKind.Map when args.Count == 3 => new MacroExpr(pos, k, target, v.Name, args[1], args[2]),
                    MacroKind.Map => new MacroExpr(pos, k, target, v.Name, null, args[1]),
                    _ => new MacroExpr(pos, k, target, v.Name, args[1], null),
                };
            }
        }

        return new CallExpr(pos, target, name, args);
    }

    private List<Expr> ParseExprList(char close)
    {
        var list = new List<Expr>();
        SkipSpace();
        if (Accept(close.ToString()))
        {
            return list;
        }

        while (true)
        {
            list.Add(ParseExpr());
            SkipSpace();
            if (Accept(","))
            {
                SkipSpace();
                if (Accept(close.ToString()))
                {
                    return list;
                }

                continue;
            }

            Expect(close.ToString());
            return list;
        }
    }

    private Expr ParsePrimary()
    {
        SkipSpace();
        if (_pos >= _src.Length)
        {
            throw Error(_pos, "Syntax error: unexpected end of input");
        }

        var pos = _pos;
        var c = _src[_pos];
        if (c == '(')
        {
            _pos++;
            var e = ParseExpr();
            Expect(")");
            return e;
        }

        if (c == '[')
        {
            _pos++;
            Enter();
            var items = ParseExprList(']');
            _depth--;
            return Check(new ListExpr(pos, items));
        }

        if (c == '{')
        {
            _pos++;
            Enter();
            var entries = new List<(Expr, Expr)>();
            SkipSpace();
            while (!Accept("}"))
            {
                var k = ParseExpr();
                Expect(":");
                var v = ParseExpr();
                entries.Add((k, v));
                SkipSpace();
                if (!Accept(","))
                {
                    Expect("}");
                    break;
                }

                SkipSpace();
            }

            _depth--;
            return Check(new MapExpr(pos, entries));
        }

        if (char.IsAsciiDigit(c) || (c == '.' && _pos + 1 < _src.Length && char.IsAsciiDigit(_src[_pos + 1])))
        {
            return ParseNumber(negative: false);
        }

        if (c is '"' or '\'')
        {
            return new LiteralExpr(pos, ParseString(raw: false, bytes: false));
        }

        if (c is 'r' or 'R' or 'b' or 'B')
        {
            var raw = false;
            var bytes = false;
            var p = _pos;
            for (var i = 0; i < 2 && p < _src.Length; i++, p++)
            {
                var ch = _src[p];
                if ((ch is 'r' or 'R') && !raw)
                {
                    raw = true;
                }
                else if ((ch is 'b' or 'B') && !bytes)
                {
                    bytes = true;
                }
                else
                {
                    break;
                }
            }

            if (p < _src.Length && _src[p] is '"' or '\'')
            {
                _pos = p;
                return new LiteralExpr(pos, ParseString(raw, bytes));
            }
        }

        var leadingDot = false;
        if (c == '.')
        {
            leadingDot = true;
            _pos++;
            SkipSpace();
        }

        var id = ParseIdentifier() ?? throw Error(pos, $"Syntax error: unexpected '{c}'");
        switch (id)
        {
            case "true" when !leadingDot:
                return new LiteralExpr(pos, CelValue.True);
            case "false" when !leadingDot:
                return new LiteralExpr(pos, CelValue.False);
            case "null" when !leadingDot:
                return new LiteralExpr(pos, CelValue.Null);
        }

        if (Reserved.Contains(id) || id == "in")
        {
            throw Error(pos, $"Syntax error: reserved identifier '{id}'");
        }

        var name = leadingDot ? "." + id : id;
        SkipSpace();
        if (Peek('('))
        {
            _pos++;
            var args = ParseExprList(')');
            return Check(MakeCall(pos, null, name, args));
        }

        return new IdentExpr(pos, name);
    }

    private LiteralExpr ParseNumber(bool negative)
    {
        var start = _pos;
        var pos = negative ? _pos - 1 : _pos;
        if (_src[_pos] == '0' && _pos + 1 < _src.Length && _src[_pos + 1] is 'x' or 'X')
        {
            _pos += 2;
            var hs = _pos;
            while (_pos < _src.Length && char.IsAsciiHexDigit(_src[_pos]))
            {
                _pos++;
            }

            var hex = _src[hs.._pos];
            if (hex.Length == 0)
            {
                throw Error(start, "Syntax error: invalid hex literal");
            }

            if (AcceptUintSuffix())
            {
                if (negative || !ulong.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var u))
                {
                    throw Error(start, "invalid uint literal");
                }

                return new LiteralExpr(pos, CelValue.Of(u));
            }

            if (!UInt128.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var mag))
            {
                throw Error(start, "invalid int literal");
            }

            return new LiteralExpr(pos, IntLiteral(mag, negative, start));
        }

        while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
        {
            _pos++;
        }

        var isDouble = false;
        if (_pos + 1 < _src.Length && _src[_pos] == '.' && char.IsAsciiDigit(_src[_pos + 1]))
        {
            isDouble = true;
            _pos++;
            while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
            {
                _pos++;
            }
        }

        if (_pos < _src.Length && _src[_pos] is 'e' or 'E')
        {
            var save = _pos;
            _pos++;
            if (_pos < _src.Length && _src[_pos] is '+' or '-')
            {
                _pos++;
            }

            if (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
            {
                isDouble = true;
                while (_pos < _src.Length && char.IsAsciiDigit(_src[_pos]))
                {
                    _pos++;
                }
            }
            else
            {
                _pos = save;
            }
        }

        var text = _src[start.._pos];
        if (isDouble)
        {
            var d = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
            return new LiteralExpr(pos, CelValue.Of(negative ? -d : d));
        }

        if (AcceptUintSuffix())
        {
            if (negative || !ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var u))
            {
                throw Error(start, "invalid uint literal");
            }

            return new LiteralExpr(pos, CelValue.Of(u));
        }

        if (!UInt128.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var m))
        {
            throw Error(start, "invalid int literal");
        }

        return new LiteralExpr(pos, IntLiteral(m, negative, start));
    }

    private CelInt IntLiteral(UInt128 magnitude, bool negative, int start)
    {
        if (negative ? magnitude > (UInt128)long.MaxValue + 1 : magnitude > long.MaxValue)
        {
            throw Error(start, "invalid int literal");
        }

        return CelValue.Of(negative ? (long)(-(Int128)magnitude) : (long)magnitude);
    }

    private bool AcceptUintSuffix()
    {
        if (_pos < _src.Length && _src[_pos] is 'u' or 'U')
        {
            _pos++;
            return true;
        }

        return false;
    }

    private CelValue ParseString(bool raw, bool bytes)
    {
        var start = _pos;
        var quote = _src[_pos];
        var triple = _pos + 2 < _src.Length && _src[_pos + 1] == quote && _src[_pos + 2] == quote;
        _pos += triple ? 3 : 1;
        var sb = new StringBuilder();
        var buf = bytes ? new List<byte>() : null;
        void AddChar(int codePoint)
        {
            if (buf is not null)
            {
                buf.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(codePoint)));
            }
            else
            {
                sb.Append(char.ConvertFromUtf32(codePoint));
            }
        }

        while (true)
        {
            if (_pos >= _src.Length)
            {
                throw Error(start, "Syntax error: unterminated string");
            }

            var c = _src[_pos];
            if (triple ? (c == quote && _pos + 2 < _src.Length && _src[_pos + 1] == quote && _src[_pos + 2] == quote) : c == quote)
            {
                _pos += triple ? 3 : 1;
                break;
            }

            if (!triple && c is '\n' or '\r')
            {
                throw Error(_pos, "Syntax error: newline in string");
            }

            if (c == '\\' && !raw)
            {
                var escPos = _pos;
                _pos++;
                if (_pos >= _src.Length)
                {
                    throw Error(escPos, "Syntax error: unterminated escape");
                }

                var e = _src[_pos++];
                switch (e)
                {
                    case 'a': AddChar(7); break;
                    case 'b': AddChar(8); break;
                    case 'f': AddChar(12); break;
                    case 'n': AddChar(10); break;
                    case 'r': AddChar(13); break;
                    case 't': AddChar(9); break;
                    case 'v': AddChar(11); break;
                    case '\\' or '\'' or '"' or '`' or '?': AddChar(e); break;
                    case 'x' or 'X':
                        {
                            var v = ParseHex(2, escPos);
                            if (buf is not null)
                            {
                                buf.Add((byte)v);
                            }
                            else
                            {
                                AddChar(v);
                            }

                            break;
                        }

                    case 'u' or 'U':
                        {
                            if (buf is not null)
                            {
                                throw Error(escPos, "Syntax error: \\u escapes are not allowed in bytes literals");
                            }

                            var v = ParseHex(e == 'u' ? 4 : 8, escPos);
                            if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000))
                            {
                                throw Error(escPos, "Syntax error: invalid unicode code point");
                            }

                            AddChar(v);
                            break;
                        }

                    case >= '0' and <= '3':
                        {
                            if (_pos + 1 >= _src.Length || _src[_pos] is < '0' or > '7' || _src[_pos + 1] is < '0' or > '7')
                            {
                                throw Error(escPos, "Syntax error: invalid octal escape");
                            }

                            var v = ((e - '0') * 64) + ((_src[_pos] - '0') * 8) + (_src[_pos + 1] - '0');
                            _pos += 2;
                            if (buf is not null)
                            {
                                buf.Add((byte)v);
                            }
                            else
                            {
                                AddChar(v);
                            }

                            break;
                        }

                    default:
                        throw Error(escPos, $"Syntax error: invalid escape sequence '\\{e}'");
                }

                continue;
            }

            if (char.IsHighSurrogate(c) && _pos + 1 < _src.Length && char.IsLowSurrogate(_src[_pos + 1]))
            {
                AddChar(char.ConvertToUtf32(c, _src[_pos + 1]));
                _pos += 2;
                continue;
            }

            if (c == '\r' && triple)
            {
                // Normalize CRLF and CR line ends inside triple-quoted strings to LF, as the spec's lexer does.
                _pos++;
                if (_pos < _src.Length && _src[_pos] == '\n')
                {
                    _pos++;
                }

                AddChar('\n');
                continue;
            }

            AddChar(c);
            _pos++;
        }

        return buf is not null ? CelValue.Of([.. buf]) : CelValue.Of(sb.ToString());
    }

    private int ParseHex(int digits, int escPos)
    {
        if (_pos + digits > _src.Length)
        {
            throw Error(escPos, "Syntax error: invalid escape sequence");
        }

        var text = _src.Substring(_pos, digits);
        if (!int.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v) || text.Any(ch => !char.IsAsciiHexDigit(ch)))
        {
            throw Error(escPos, "Syntax error: invalid escape sequence");
        }

        _pos += digits;
        return v;
    }

    private void SkipSpace()
    {
        while (_pos < _src.Length)
        {
            var c = _src[_pos];
            if (c is ' ' or '\t' or '\n' or '\r' or '\f')
            {
                _pos++;
            }
            else if (c == '/' && _pos + 1 < _src.Length && _src[_pos + 1] == '/')
            {
                while (_pos < _src.Length && _src[_pos] != '\n')
                {
                    _pos++;
                }
            }
            else
            {
                return;
            }
        }
    }

    private bool Peek(char c) => _pos < _src.Length && _src[_pos] == c;

    private bool PeekAt(int offset, char c) => _pos + offset < _src.Length && _src[_pos + offset] == c;

    private bool Accept(string token)
    {
        if (string.CompareOrdinal(_src, _pos, token, 0, token.Length) == 0)
        {
            // '|' and '&' alone are not operators; neither is '=' alone.
            _pos += token.Length;
            return true;
        }

        return false;
    }

    private bool AcceptKeyword(string word)
    {
        if (string.CompareOrdinal(_src, _pos, word, 0, word.Length) == 0
            && (_pos + word.Length >= _src.Length || !(char.IsAsciiLetterOrDigit(_src[_pos + word.Length]) || _src[_pos + word.Length] == '_')))
        {
            _pos += word.Length;
            return true;
        }

        return false;
    }

    private void Expect(string token)
    {
        SkipSpace();
        if (!Accept(token))
        {
            throw Error(_pos, _pos < _src.Length ? $"Syntax error: expected '{token}', found '{_src[_pos]}'" : $"Syntax error: expected '{token}' at end of input");
        }
    }
}
