using System.Globalization;
using System.Text;

namespace MeshBus.Policy.Cel;

/// <summary>CEL's standard operators and functions on values. Every function returns an error value instead of throwing.</summary>
internal static class Runtime
{
    public static readonly CelError DivisionByZero = new("division by zero");
    public static readonly CelError ModulusByZero = new("modulus by zero");
    public static readonly CelError Overflow = new("return error for overflow");

    public static CelError NoOverload(string function, params CelValue[] args) =>
        new($"no such overload: {function}({string.Join(", ", args.Select(a => a.Type.ToString()))})");

    public static string TypeName(CelValue v) => v switch
    {
        CelList => "list",
        CelMap => "map",
        _ => v.Type.Name,
    };

    // ---- equality and ordering ----
    public static CelValue Equal(CelValue a, CelValue b)
    {
        if (a is CelError)
        {
            return a;
        }

        if (b is CelError)
        {
            return b;
        }

        return CelValue.Of(Equals(a, b));
    }

    public static CelValue NotEqual(CelValue a, CelValue b)
    {
        if (a is CelError)
        {
            return a;
        }

        if (b is CelError)
        {
            return b;
        }

        return CelValue.Of(!Equals(a, b));
    }

    public static bool Equals(CelValue a, CelValue b)
    {
        switch (a)
        {
            case CelString sa:
                return b is CelString sb && string.Equals(sa.Value, sb.Value, StringComparison.Ordinal);
            case CelInt or CelUint or CelDouble:
                return CompareNumbers(a, b) == 0;
            case CelBool ba:
                return ReferenceEquals(ba, b);
            case CelNull:
                return b is CelNull;
            case CelBytes bya:
                return b is CelBytes byb && bya.Bytes.AsSpan().SequenceEqual(byb.Bytes);
            case CelTimestamp ta:
                return b is CelTimestamp tb && ta.Nanos == tb.Nanos;
            case CelDuration da:
                return b is CelDuration db && da.Nanos == db.Nanos;
            case CelTypeValue tya:
                return b is CelTypeValue tyb && tya.Name == tyb.Name;
            case CelList la:
                {
                    if (b is not CelList lb || la.Array.Length != lb.Array.Length)
                    {
                        return false;
                    }

                    for (var i = 0; i < la.Array.Length; i++)
                    {
                        if (!Equals(la.Array[i], lb.Array[i]))
                        {
                            return false;
                        }
                    }

                    return true;
                }

            case CelMap ma:
                {
                    if (b is not CelMap mb || ma.Count != mb.Count)
                    {
                        return false;
                    }

                    foreach (var (k, v) in ma.EntryValues)
                    {
                        if (!mb.TryGetValue(k, out var bv) || !Equals(v, bv))
                        {
                            return false;
                        }
                    }

                    return true;
                }

            default:
                return false;
        }
    }

    /// <summary>Compares numbers of any of int, uint, double by value; null when unordered (NaN) or not both numbers.</summary>
    public static int? CompareNumbers(CelValue a, CelValue b)
    {
        switch (a, b)
        {
            case (CelInt x, CelInt y):
                return x.Value.CompareTo(y.Value);
            case (CelUint x, CelUint y):
                return x.Value.CompareTo(y.Value);
            case (CelDouble x, CelDouble y):
                return double.IsNaN(x.Value) || double.IsNaN(y.Value) ? null : x.Value.CompareTo(y.Value);
            case (CelInt x, CelUint y):
                return x.Value < 0 ? -1 : ((ulong)x.Value).CompareTo(y.Value);
            case (CelUint x, CelInt y):
                return y.Value < 0 ? 1 : x.Value.CompareTo((ulong)y.Value);
            case (CelInt x, CelDouble y):
                return CompareIntDouble(x.Value, y.Value);
            case (CelDouble x, CelInt y):
                return -CompareIntDouble(y.Value, x.Value);
            case (CelUint x, CelDouble y):
                return CompareUintDouble(x.Value, y.Value);
            case (CelDouble x, CelUint y):
                return -CompareUintDouble(y.Value, x.Value);
            default:
                return null;
        }
    }

    private static int? CompareIntDouble(long i, double d)
    {
        if (double.IsNaN(d))
        {
            return null;
        }

        // CEL compares int and double as doubles (lossy above 2^53), as cel-go and the conformance data do.
        return ((double)i).CompareTo(d);
    }

    private static int? CompareUintDouble(ulong u, double d)
    {
        if (double.IsNaN(d))
        {
            return null;
        }

        return ((double)u).CompareTo(d);
    }

    /// <summary>Ordering for the relational operators; an error value when the operands cannot be ordered.</summary>
    public static CelValue Relation(string op, CelValue a, CelValue b)
    {
        if (a is CelError)
        {
            return a;
        }

        if (b is CelError)
        {
            return b;
        }

        int? c;
        switch (a, b)
        {
            case (CelInt or CelUint or CelDouble, CelInt or CelUint or CelDouble):
                c = CompareNumbers(a, b);
                if (c is null)
                {
                    return CelValue.False;
                }

                break;
            case (CelString x, CelString y):
                c = CompareCodePoints(x.Value, y.Value);
                break;
            case (CelBytes x, CelBytes y):
                c = x.Bytes.AsSpan().SequenceCompareTo(y.Bytes);
                break;
            case (CelBool x, CelBool y):
                c = x.Value.CompareTo(y.Value);
                break;
            case (CelTimestamp x, CelTimestamp y):
                c = x.Nanos.CompareTo(y.Nanos);
                break;
            case (CelDuration x, CelDuration y):
                c = x.Nanos.CompareTo(y.Nanos);
                break;
            default:
                return NoOverload(op, a, b);
        }

        var r = c.Value;
        return CelValue.Of(op switch
        {
            "_<_" => r < 0,
            "_<=_" => r <= 0,
            "_>_" => r > 0,
            _ => r >= 0,
        });
    }

    public static int CompareCodePoints(string a, string b)
    {
        var n = Math.Min(a.Length, b.Length);
        for (var i = 0; i < n; i++)
        {
            var ca = a[i];
            var cb = b[i];
            if (ca == cb)
            {
                continue;
            }

            // Surrogates (U+D800..U+DFFF) encode code points above U+FFFF, which sort after U+E000..U+FFFF.
            var sa = char.IsSurrogate(ca);
            var sb = char.IsSurrogate(cb);
            if (sa != sb)
            {
                return sa ? 1 : -1;
            }

            return ca.CompareTo(cb);
        }

        return a.Length.CompareTo(b.Length);
    }

    // ---- arithmetic ----
    public static CelValue Add(CelValue a, CelValue b)
    {
        switch (a, b)
        {
            case (CelInt x, CelInt y):
                {
                    var r = unchecked(x.Value + y.Value);
                    return ((x.Value ^ r) & (y.Value ^ r)) < 0 ? Overflow : CelValue.Of(r);
                }

            case (CelUint x, CelUint y):
                {
                    var r = unchecked(x.Value + y.Value);
                    return r < x.Value ? Overflow : CelValue.Of(r);
                }

            case (CelDouble x, CelDouble y):
                return CelValue.Of(x.Value + y.Value);
            case (CelString x, CelString y):
                return CelValue.Of(x.Value + y.Value);
            case (CelBytes x, CelBytes y):
                return new CelBytes([.. x.Bytes, .. y.Bytes]);
            case (CelList x, CelList y):
                return x.Array.Length == 0 ? y : y.Array.Length == 0 ? x : new CelList([.. x.Array, .. y.Array]);
            case (CelTimestamp x, CelDuration y):
                return (CelValue?)CelTimestamp.FromNanos(x.Nanos + y.Nanos) ?? Overflow;
            case (CelDuration x, CelTimestamp y):
                return (CelValue?)CelTimestamp.FromNanos(x.Nanos + y.Nanos) ?? Overflow;
            case (CelDuration x, CelDuration y):
                return (CelValue?)CelDuration.FromNanos(x.Nanos + y.Nanos) ?? Overflow;
            default:
                return Propagate(a, b) ?? NoOverload("_+_", a, b);
        }
    }

    public static CelValue Subtract(CelValue a, CelValue b)
    {
        switch (a, b)
        {
            case (CelInt x, CelInt y):
                {
                    var r = unchecked(x.Value - y.Value);
                    return ((x.Value ^ y.Value) & (x.Value ^ r)) < 0 ? Overflow : CelValue.Of(r);
                }

            case (CelUint x, CelUint y):
                return y.Value > x.Value ? Overflow : CelValue.Of(x.Value - y.Value);
            case (CelDouble x, CelDouble y):
                return CelValue.Of(x.Value - y.Value);
            case (CelTimestamp x, CelTimestamp y):
                {
                    // The difference of two timestamps must fit 64-bit nanoseconds (as in cel-go and the conformance data).
                    var diff = x.Nanos - y.Nanos;
                    return diff < long.MinValue || diff > long.MaxValue ? CelValue.Error("duration out of range") : (CelValue?)CelDuration.FromNanos(diff) ?? Overflow;
                }

            case (CelTimestamp x, CelDuration y):
                return (CelValue?)CelTimestamp.FromNanos(x.Nanos - y.Nanos) ?? Overflow;
            case (CelDuration x, CelDuration y):
                return (CelValue?)CelDuration.FromNanos(x.Nanos - y.Nanos) ?? Overflow;
            default:
                return Propagate(a, b) ?? NoOverload("_-_", a, b);
        }
    }

    public static CelValue Multiply(CelValue a, CelValue b)
    {
        switch (a, b)
        {
            case (CelInt x, CelInt y):
                {
                    var r = Math.BigMul(x.Value, y.Value, out var low);
                    return (r == 0 && low >= 0) || (r == -1 && low < 0) ? CelValue.Of(low) : Overflow;
                }

            case (CelUint x, CelUint y):
                {
                    var high = Math.BigMul(x.Value, y.Value, out var low);
                    return high == 0 ? CelValue.Of(low) : Overflow;
                }

            case (CelDouble x, CelDouble y):
                return CelValue.Of(x.Value * y.Value);
            default:
                return Propagate(a, b) ?? NoOverload("_*_", a, b);
        }
    }

    public static CelValue Divide(CelValue a, CelValue b)
    {
        switch (a, b)
        {
            case (CelInt x, CelInt y):
                return y.Value == 0 ? DivisionByZero : (x.Value == long.MinValue && y.Value == -1) ? Overflow : CelValue.Of(x.Value / y.Value);
            case (CelUint x, CelUint y):
                return y.Value == 0 ? DivisionByZero : CelValue.Of(x.Value / y.Value);
            case (CelDouble x, CelDouble y):
                return CelValue.Of(x.Value / y.Value);
            default:
                return Propagate(a, b) ?? NoOverload("_/_", a, b);
        }
    }

    public static CelValue Modulo(CelValue a, CelValue b)
    {
        switch (a, b)
        {
            case (CelInt x, CelInt y):
                return y.Value == 0 ? ModulusByZero : (x.Value == long.MinValue && y.Value == -1) ? Overflow : CelValue.Of(x.Value % y.Value);
            case (CelUint x, CelUint y):
                return y.Value == 0 ? ModulusByZero : CelValue.Of(x.Value % y.Value);
            default:
                return Propagate(a, b) ?? NoOverload("_%_", a, b);
        }
    }

    public static CelValue Negate(CelValue a) => a switch
    {
        CelInt x => x.Value == long.MinValue ? Overflow : CelValue.Of(-x.Value),
        CelDouble x => CelValue.Of(-x.Value),
        CelError => a,
        _ => NoOverload("-_", a),
    };

    public static CelValue Not(CelValue a) => a switch
    {
        CelBool x => CelValue.Of(!x.Value),
        CelError => a,
        _ => NoOverload("!_", a),
    };

    public static CelValue? Propagate(CelValue a, CelValue b) => a is CelError ? a : b is CelError ? b : null;

    // ---- containers ----
    public static CelValue Index(CelValue container, CelValue index)
    {
        if (Propagate(container, index) is { } err)
        {
            return err;
        }

        switch (container)
        {
            case CelList l:
                {
                    long i;
                    switch (index)
                    {
                        case CelInt x:
                            i = x.Value;
                            break;
                        case CelUint x:
                            i = x.Value > long.MaxValue ? -1 : (long)x.Value;
                            break;
                        case CelDouble x when x.Value == Math.Floor(x.Value) && Math.Abs(x.Value) < 9.2E18:
                            i = (long)x.Value;
                            break;
                        case CelDouble:
                            return CelValue.Error($"unsupported index value {index}");
                        default:
                            return NoOverload("_[_]", container, index);
                    }

                    return i < 0 || i >= l.Array.Length ? CelValue.Error($"index out of bounds: {index}") : l.Array[i];
                }

            case CelMap m:
                if (index is not (CelInt or CelUint or CelDouble or CelString or CelBool))
                {
                    return CelValue.Error($"unsupported key type: {TypeName(index)}");
                }

                return m.TryGetValue(index, out var v) ? v : CelValue.Error($"no such key: {index}");
            default:
                return NoOverload("_[_]", container, index);
        }
    }

    public static CelValue In(CelValue item, CelValue container)
    {
        if (Propagate(item, container) is { } err)
        {
            return err;
        }

        switch (container)
        {
            case CelList l:
                foreach (var e in l.Array)
                {
                    if (Equals(item, e))
                    {
                        return CelValue.True;
                    }
                }

                return CelValue.False;
            case CelMap m:
                return CelValue.Of(item is CelInt or CelUint or CelDouble or CelString or CelBool && m.TryGetValue(item, out _));
            default:
                return NoOverload("@in", item, container);
        }
    }

    public static CelValue Size(CelValue v) => v switch
    {
        CelString s => CelValue.Of((long)CodePointCount(s.Value)),
        CelBytes b => CelValue.Of((long)b.Bytes.Length),
        CelList l => CelValue.Of((long)l.Array.Length),
        CelMap m => CelValue.Of((long)m.Count),
        CelError => v,
        _ => NoOverload("size", v),
    };

    public static int CodePointCount(string s)
    {
        var n = s.Length;
        foreach (var c in s)
        {
            if (char.IsLowSurrogate(c))
            {
                n--;
            }
        }

        return n;
    }

    // ---- strings ----
    public static CelValue Contains(CelValue s, CelValue sub) => (s, sub) switch
    {
        (CelString x, CelString y) => CelValue.Of(x.Value.Contains(y.Value, StringComparison.Ordinal)),
        _ => Propagate(s, sub) ?? NoOverload("contains", s, sub),
    };

    public static CelValue StartsWith(CelValue s, CelValue sub) => (s, sub) switch
    {
        (CelString x, CelString y) => CelValue.Of(x.Value.StartsWith(y.Value, StringComparison.Ordinal)),
        _ => Propagate(s, sub) ?? NoOverload("startsWith", s, sub),
    };

    public static CelValue EndsWith(CelValue s, CelValue sub) => (s, sub) switch
    {
        (CelString x, CelString y) => CelValue.Of(x.Value.EndsWith(y.Value, StringComparison.Ordinal)),
        _ => Propagate(s, sub) ?? NoOverload("endsWith", s, sub),
    };

    // ---- conversions ----
    public static CelValue ToInt(CelValue v)
    {
        switch (v)
        {
            case CelInt:
                return v;
            case CelUint u:
                return u.Value > long.MaxValue ? CelValue.Error("int range error") : CelValue.Of((long)u.Value);
            case CelDouble d:
                if (double.IsNaN(d.Value) || d.Value <= -9.2233720368547758E18 || d.Value >= 9.2233720368547758E18)
                {
                    return CelValue.Error("int range error");
                }

                return CelValue.Of((long)Math.Truncate(d.Value));
            case CelString s:
                return long.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                    ? CelValue.Of(l) : CelValue.Error($"cannot convert '{s.Value}' to int");
            case CelTimestamp t:
                return CelValue.Of(t.Seconds);
            case CelError:
                return v;
            default:
                return NoOverload("int", v);
        }
    }

    public static CelValue ToUint(CelValue v)
    {
        switch (v)
        {
            case CelUint:
                return v;
            case CelInt i:
                return i.Value < 0 ? CelValue.Error("uint range error") : CelValue.Of((ulong)i.Value);
            case CelDouble d:
                if (double.IsNaN(d.Value) || d.Value <= -1 || d.Value >= 1.8446744073709552E19)
                {
                    return CelValue.Error("uint range error");
                }

                return CelValue.Of((ulong)Math.Truncate(d.Value));
            case CelString s:
                return ulong.TryParse(s.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var u)
                    ? CelValue.Of(u) : CelValue.Error($"cannot convert '{s.Value}' to uint");
            case CelError:
                return v;
            default:
                return NoOverload("uint", v);
        }
    }

    public static CelValue ToDouble(CelValue v)
    {
        switch (v)
        {
            case CelDouble:
                return v;
            case CelInt i:
                return CelValue.Of((double)i.Value);
            case CelUint u:
                return CelValue.Of((double)u.Value);
            case CelString s:
                {
                    var text = s.Value;
                    if (text is "NaN" or "Infinity" or "+Infinity" or "-Infinity" or "inf" or "+inf" or "-inf")
                    {
                        return CelValue.Of(text.Contains("NaN", StringComparison.Ordinal) ? double.NaN : text.StartsWith('-') ? double.NegativeInfinity : double.PositiveInfinity);
                    }

                    return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                        ? CelValue.Of(d) : CelValue.Error($"cannot convert '{text}' to double");
                }

            case CelError:
                return v;
            default:
                return NoOverload("double", v);
        }
    }

    public static CelValue ToStringValue(CelValue v)
    {
        switch (v)
        {
            case CelString:
                return v;
            case CelInt i:
                return CelValue.Of(i.Value.ToString(CultureInfo.InvariantCulture));
            case CelUint u:
                return CelValue.Of(u.Value.ToString(CultureInfo.InvariantCulture));
            case CelDouble d:
                return CelValue.Of(FormatDouble(d.Value));
            case CelBool b:
                return CelValue.Of(b.Value ? "true" : "false");
            case CelBytes by:
                try
                {
                    return CelValue.Of(new UTF8Encoding(false, true).GetString(by.Bytes));
                }
                catch (DecoderFallbackException)
                {
                    return CelValue.Error("invalid UTF-8 in bytes, cannot convert to string");
                }

            case CelTimestamp t:
                return CelValue.Of(FormatTimestamp(t));
            case CelDuration d:
                return CelValue.Of(d.Format());
            case CelNull:
                return CelValue.Of("null");
            case CelTypeValue ty:
                return CelValue.Of(ty.Name);
            case CelError:
                return v;
            default:
                return NoOverload("string", v);
        }
    }

    /// <summary>Formats like Go's <c>strconv.FormatFloat(f, 'g', -1, 64)</c>... as cel-go does for string(double).</summary>
    public static string FormatDouble(double d)
    {
        if (double.IsNaN(d))
        {
            return "NaN";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "+Inf" : "-Inf";
        }

        var r = d.ToString("R", CultureInfo.InvariantCulture);
        var e = r.IndexOf('E', StringComparison.Ordinal);
        if (e < 0)
        {
            return r;
        }

        // .NET writes 1E+21; Go writes 1e+21.
        var mant = r[..e];
        var exp = int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture);
        return mant + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("D2", CultureInfo.InvariantCulture);
    }

    public static string FormatTimestamp(CelTimestamp t)
    {
        var dt = DateTimeOffset.FromUnixTimeSeconds(t.Seconds).UtcDateTime;
        var n = t.NanoOfSecond;
        var frac = n == 0 ? string.Empty : "." + n.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        return dt.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + frac + "Z";
    }

    public static CelValue ToBytes(CelValue v) => v switch
    {
        CelBytes => v,
        CelString s => new CelBytes(Encoding.UTF8.GetBytes(s.Value)),
        CelError => v,
        _ => NoOverload("bytes", v),
    };

    public static CelValue ToBool(CelValue v) => v switch
    {
        CelBool => v,
        CelString s => s.Value switch
        {
            "true" or "TRUE" or "True" or "t" or "1" => CelValue.True,
            "false" or "FALSE" or "False" or "f" or "0" => CelValue.False,
            _ => CelValue.Error($"cannot convert '{s.Value}' to bool"),
        },
        CelError => v,
        _ => NoOverload("bool", v),
    };

    public static CelValue TypeOf(CelValue v) => v switch
    {
        CelError => v,
        _ => new CelTypeValue(TypeName(v)),
    };

    public static CelValue ToTimestamp(CelValue v)
    {
        switch (v)
        {
            case CelTimestamp:
                return v;
            case CelInt i:
                return (CelValue?)CelTimestamp.FromNanos((Int128)i.Value * 1_000_000_000) ?? CelValue.Error("timestamp out of range");
            case CelString s:
                return ParseTimestamp(s.Value) is { } t ? t : CelValue.Error($"cannot parse timestamp '{s.Value}'");
            case CelError:
                return v;
            default:
                return NoOverload("timestamp", v);
        }
    }

    public static CelValue ToDuration(CelValue v)
    {
        switch (v)
        {
            case CelDuration:
                return v;
            case CelString s:
                return ParseDuration(s.Value) is { } d ? d : CelValue.Error($"cannot parse duration '{s.Value}'");
            case CelInt i:
                return (CelValue?)CelDuration.FromNanos(i.Value) ?? CelValue.Error("duration out of range");
            case CelError:
                return v;
            default:
                return NoOverload("duration", v);
        }
    }

    /// <summary>RFC 3339 with up to nanosecond fractions and a Z or ±hh:mm offset.</summary>
    public static CelTimestamp? ParseTimestamp(string s)
    {
        // yyyy-mm-ddThh:mm:ss[.f{1,9}](Z|±hh:mm)
        if (s.Length < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        {
            return null;
        }

        if (!TryDigits(s, 0, 4, out var year) || !TryDigits(s, 5, 2, out var month) || !TryDigits(s, 8, 2, out var day)
            || !TryDigits(s, 11, 2, out var hour) || !TryDigits(s, 14, 2, out var minute) || !TryDigits(s, 17, 2, out var second))
        {
            return null;
        }

        var p = 19;
        long nanos = 0;
        if (p < s.Length && s[p] == '.')
        {
            p++;
            var start = p;
            while (p < s.Length && char.IsAsciiDigit(s[p]))
            {
                p++;
            }

            var digits = p - start;
            if (digits is 0 or > 9)
            {
                return null;
            }

            nanos = long.Parse(s.AsSpan(start, digits), CultureInfo.InvariantCulture);
            for (var i = digits; i < 9; i++)
            {
                nanos *= 10;
            }
        }

        long offsetSeconds;
        if (p < s.Length && (s[p] == 'Z' || s[p] == 'z') && p + 1 == s.Length)
        {
            offsetSeconds = 0;
        }
        else if (p + 6 == s.Length && (s[p] == '+' || s[p] == '-') && s[p + 3] == ':'
            && TryDigits(s, p + 1, 2, out var oh) && TryDigits(s, p + 4, 2, out var om) && oh < 24 && om < 60)
        {
            offsetSeconds = ((oh * 3600) + (om * 60)) * (s[p] == '-' ? -1 : 1);
        }
        else
        {
            return null;
        }

        if (month is < 1 or > 12 || day < 1 || year < 1 || day > DateTime.DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
        {
            return null;
        }

        var local = new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc);
        var seconds = (long)(local - DateTime.UnixEpoch).TotalSeconds - offsetSeconds;
        return CelTimestamp.FromNanos(((Int128)seconds * 1_000_000_000) + nanos);
    }

    private static bool TryDigits(string s, int start, int count, out int value)
    {
        value = 0;
        if (start + count > s.Length)
        {
            return false;
        }

        for (var i = start; i < start + count; i++)
        {
            if (!char.IsAsciiDigit(s[i]))
            {
                return false;
            }

            value = (value * 10) + (s[i] - '0');
        }

        return true;
    }

    /// <summary>Go duration syntax: an optional sign and a sequence of decimal numbers with units h, m, s, ms, us, µs, ns.</summary>
    public static CelDuration? ParseDuration(string s)
    {
        var p = 0;
        var negative = false;
        if (p < s.Length && s[p] is '-' or '+')
        {
            negative = s[p] == '-';
            p++;
        }

        if (p == s.Length)
        {
            return null;
        }

        if (s[p..] == "0")
        {
            return CelDuration.FromNanos(0);
        }

        Int128 total = 0;
        while (p < s.Length)
        {
            var start = p;
            while (p < s.Length && char.IsAsciiDigit(s[p]))
            {
                p++;
            }

            var intPart = s[start..p];
            var fracPart = string.Empty;
            if (p < s.Length && s[p] == '.')
            {
                p++;
                var fs = p;
                while (p < s.Length && char.IsAsciiDigit(s[p]))
                {
                    p++;
                }

                fracPart = s[fs..p];
            }

            if (intPart.Length == 0 && fracPart.Length == 0)
            {
                return null;
            }

            var us = p;
            while (p < s.Length && !char.IsAsciiDigit(s[p]) && s[p] != '.')
            {
                p++;
            }

            long unit = s[us..p] switch
            {
                "h" => 3_600_000_000_000,
                "m" => 60_000_000_000,
                "s" => 1_000_000_000,
                "ms" => 1_000_000,
                "us" or "µs" or "μs" => 1_000,
                "ns" => 1,
                _ => 0,
            };
            if (unit == 0 || intPart.Length > 30 || fracPart.Length > 30)
            {
                return null;
            }

            var whole = intPart.Length == 0 ? 0 : Int128.Parse(intPart, CultureInfo.InvariantCulture);
            total += whole * unit;
            if (fracPart.Length > 0)
            {
                Int128 scale = 1;
                Int128 frac = 0;
                foreach (var ch in fracPart.AsSpan(0, Math.Min(fracPart.Length, 20)))
                {
                    frac = (frac * 10) + (ch - '0');
                    scale *= 10;
                }

                total += frac * unit / scale;
            }

            if (total > (Int128)CelDuration.MaxSeconds * 1_000_000_000 * 2)
            {
                return null;
            }
        }

        return CelDuration.FromNanos(negative ? -total : total);
    }

    // ---- timestamp and duration accessors ----
    public static CelValue TimeAccessor(string function, CelValue target, CelValue? tz)
    {
        if (target is CelError)
        {
            return target;
        }

        if (tz is CelError)
        {
            return tz;
        }

        if (target is CelDuration d)
        {
            if (tz is not null)
            {
                return NoOverload(function, target, tz);
            }

            return function switch
            {
                "getHours" => CelValue.Of((long)(d.Nanos / 3_600_000_000_000)),
                "getMinutes" => CelValue.Of((long)(d.Nanos / 60_000_000_000)),
                "getSeconds" => CelValue.Of((long)(d.Nanos / 1_000_000_000)),
                "getMilliseconds" => CelValue.Of((long)(d.Nanos % 1_000_000_000 / 1_000_000)),
                _ => NoOverload(function, target),
            };
        }

        if (target is not CelTimestamp t)
        {
            return tz is null ? NoOverload(function, target) : NoOverload(function, target, tz);
        }

        var offset = TimeSpan.Zero;
        if (tz is not null)
        {
            if (tz is not CelString zone)
            {
                return NoOverload(function, target, tz);
            }

            if (!TryZoneOffset(zone.Value, t, out offset))
            {
                return CelValue.Error($"unknown time zone '{zone.Value}'");
            }
        }

        var local = DateTimeOffset.FromUnixTimeSeconds(t.Seconds).ToOffset(offset);
        var dt = local.DateTime;
        return function switch
        {
            "getFullYear" => CelValue.Of((long)dt.Year),
            "getMonth" => CelValue.Of((long)dt.Month - 1),
            "getDate" => CelValue.Of((long)dt.Day),
            "getDayOfMonth" => CelValue.Of((long)dt.Day - 1),
            "getDayOfYear" => CelValue.Of((long)dt.DayOfYear - 1),
            "getDayOfWeek" => CelValue.Of((long)dt.DayOfWeek),
            "getHours" => CelValue.Of((long)dt.Hour),
            "getMinutes" => CelValue.Of((long)dt.Minute),
            "getSeconds" => CelValue.Of((long)dt.Second),
            "getMilliseconds" => CelValue.Of((long)(t.NanoOfSecond / 1_000_000)),
            _ => NoOverload(function, target),
        };
    }

    private static bool TryZoneOffset(string zone, CelTimestamp t, out TimeSpan offset)
    {
        offset = TimeSpan.Zero;
        if (zone.Length > 0 && (zone[0] is '+' or '-' || char.IsAsciiDigit(zone[0])))
        {
            var sign = zone[0] == '-' ? -1 : 1;
            var body = zone[0] is '+' or '-' ? zone[1..] : zone;
            var parts = body.Split(':');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var m) || h > 23 || m > 59)
            {
                return false;
            }

            offset = new TimeSpan(h, m, 0) * sign;
            return true;
        }

        if (zone is "UTC" or "utc" or "Z")
        {
            return true;
        }

        try
        {
            var info = TimeZoneInfo.FindSystemTimeZoneById(zone);
            offset = info.GetUtcOffset(DateTimeOffset.FromUnixTimeSeconds(t.Seconds));
            return true;
        }
        catch (TimeZoneNotFoundException)
        {
            return false;
        }
        catch (InvalidTimeZoneException)
        {
            return false;
        }
    }
}
