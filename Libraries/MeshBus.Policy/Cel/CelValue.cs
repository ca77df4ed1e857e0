using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MeshBus.Policy.Cel;

/// <summary>
/// A CEL value: one of the sealed subclasses (<see cref="CelInt"/>, <see cref="CelString"/>, <see cref="CelMap"/>,
/// <see cref="CelError"/>...). Errors are values: an evaluation never throws for a CEL-level error.
/// </summary>
public abstract class CelValue
{
    private protected CelValue()
    {
    }

    /// <summary><c>true</c>.</summary>
    public static CelBool True { get; } = new(true);

    /// <summary><c>false</c>.</summary>
    public static CelBool False { get; } = new(false);

    /// <summary><c>null</c>.</summary>
    public static CelNull Null { get; } = new();

    /// <summary>The runtime type of the value (lists and maps report <c>dyn</c> element types).</summary>
    public abstract CelType Type { get; }

    /// <summary>Whether this is an error value.</summary>
    public virtual bool IsError => false;

    /// <summary>The error message of an error value, otherwise null.</summary>
    public virtual string? ErrorMessage => null;

    /// <summary>Whether this is the boolean <c>true</c> (anything else, errors included, is not).</summary>
    public bool IsTrue => ReferenceEquals(this, True);

    /// <summary>An int value.</summary>
    public static CelInt Of(long value) => CelInt.Of(value);

    /// <summary>A uint value.</summary>
    public static CelUint Of(ulong value) => new(value);

    /// <summary>A double value.</summary>
    public static CelDouble Of(double value) => new(value);

    /// <summary>A bool value (the shared instances).</summary>
    public static CelBool Of(bool value) => value ? True : False;

    /// <summary>A string value.</summary>
    public static CelString Of(string value) => new(value ?? throw new ArgumentNullException(nameof(value)));

    /// <summary>A bytes value (the array is copied).</summary>
    public static CelBytes Of(byte[] value) => new((byte[])(value ?? throw new ArgumentNullException(nameof(value))).Clone());

    /// <summary>A timestamp value; throws <see cref="ArgumentOutOfRangeException"/> outside CEL's range.</summary>
    public static CelTimestamp Of(DateTimeOffset value) => CelTimestamp.FromNanos((Int128)(value.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100)
        ?? throw new ArgumentOutOfRangeException(nameof(value));

    /// <summary>A duration value; throws <see cref="ArgumentOutOfRangeException"/> outside CEL's range.</summary>
    public static CelDuration Of(TimeSpan value) => CelDuration.FromNanos((Int128)value.Ticks * 100)
        ?? throw new ArgumentOutOfRangeException(nameof(value));

    /// <summary>A list value.</summary>
    public static CelList List(IEnumerable<CelValue> items) => new([.. items ?? throw new ArgumentNullException(nameof(items))]);

    /// <summary>A list value.</summary>
    public static CelList List(params CelValue[] items) => new([.. items]);

    /// <summary>A map value; throws <see cref="ArgumentException"/> for a key that is not int, uint, bool or string, or a duplicate key.</summary>
    public static CelMap Map(IEnumerable<KeyValuePair<CelValue, CelValue>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var map = new CelMap();
        foreach (var (k, v) in entries)
        {
            var error = map.TryAdd(k, v);
            if (error is not null)
            {
                throw new ArgumentException(error, nameof(entries));
            }
        }

        return map;
    }

    /// <summary>A string-keyed map value.</summary>
    public static CelMap Map(IEnumerable<KeyValuePair<string, CelValue>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var map = new CelMap();
        foreach (var (k, v) in entries)
        {
            var error = map.TryAdd(Of(k), v);
            if (error is not null)
            {
                throw new ArgumentException(error, nameof(entries));
            }
        }

        return map;
    }

    /// <summary>An error value with a message.</summary>
    public static CelError Error(string message) => new(message);

    /// <summary>
    /// Converts JSON: objects become string-keyed maps, arrays lists, integral numbers int (uint when above the int
    /// range, double when above that), other numbers double, strings stay strings.
    /// </summary>
    public static CelValue FromJson(JsonElement json)
    {
        switch (json.ValueKind)
        {
            case JsonValueKind.Object:
                var map = new CelMap();
                foreach (var p in json.EnumerateObject())
                {
                    // Duplicate JSON keys: the last one wins, as System.Text.Json's own readers do.
                    map.Set(Of(p.Name), FromJson(p.Value));
                }

                return map;
            case JsonValueKind.Array:
                var items = new List<CelValue>(json.GetArrayLength());
                foreach (var e in json.EnumerateArray())
                {
                    items.Add(FromJson(e));
                }

                return new CelList([.. items]);
            case JsonValueKind.String:
                return Of(json.GetString()!);
            case JsonValueKind.Number:
                if (json.TryGetInt64(out var l))
                {
                    return Of(l);
                }

                if (json.TryGetUInt64(out var u))
                {
                    return Of(u);
                }

                return Of(json.GetDouble());
            case JsonValueKind.True:
                return True;
            case JsonValueKind.False:
                return False;
            case JsonValueKind.Null:
                return Null;
            default:
                throw new ArgumentException($"unsupported JSON value kind {json.ValueKind}", nameof(json));
        }
    }

    /// <summary>
    /// The value as JSON (for <c>meshbus policy eval</c>): numbers as numbers (non-finite doubles as strings), bytes as
    /// base64, timestamps as RFC 3339, durations as seconds with an <c>s</c> suffix, types as their name, map keys as strings.
    /// </summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, JsonOptions))
        {
            WriteJson(writer);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>JSON output for people and tools, not HTML: quotes and angle brackets stay readable.</summary>
    internal static readonly JsonWriterOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes the value as JSON (see <see cref="ToJson()"/>).</summary>
    public abstract void WriteJson(Utf8JsonWriter writer);

    /// <summary>The value in CEL-like notation, for diagnostics.</summary>
    public abstract override string ToString();

    internal static string FormatDouble(double d) => double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "+Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : d.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>A CEL int (signed 64-bit).</summary>
public sealed class CelInt : CelValue
{
    private static readonly CelInt[] Cache = CreateCache();

    internal CelInt(long value) => Value = value;

    /// <summary>The value.</summary>
    public long Value { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Int;

    internal static new CelInt Of(long value) => value is >= -128 and < 1024 ? Cache[value + 128] : new CelInt(value);

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteNumberValue(Value);

    /// <inheritdoc/>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);

    private static CelInt[] CreateCache()
    {
        var cache = new CelInt[1024 + 128];
        for (var i = 0; i < cache.Length; i++)
        {
            cache[i] = new CelInt(i - 128);
        }

        return cache;
    }
}

/// <summary>A CEL uint (unsigned 64-bit).</summary>
public sealed class CelUint : CelValue
{
    internal CelUint(ulong value) => Value = value;

    /// <summary>The value.</summary>
    public ulong Value { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Uint;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteNumberValue(Value);

    /// <inheritdoc/>
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture) + "u";
}

/// <summary>A CEL double.</summary>
public sealed class CelDouble : CelValue
{
    internal CelDouble(double value) => Value = value;

    /// <summary>The value.</summary>
    public double Value { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Double;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer)
    {
        if (double.IsFinite(Value))
        {
            writer.WriteNumberValue(Value);
        }
        else
        {
            writer.WriteStringValue(double.IsNaN(Value) ? "NaN" : Value > 0 ? "Infinity" : "-Infinity");
        }
    }

    /// <inheritdoc/>
    public override string ToString() => FormatDouble(Value);
}

/// <summary>A CEL bool; only the two shared instances <see cref="CelValue.True"/> and <see cref="CelValue.False"/> exist.</summary>
public sealed class CelBool : CelValue
{
    internal CelBool(bool value) => Value = value;

    /// <summary>The value.</summary>
    public bool Value { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Bool;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteBooleanValue(Value);

    /// <inheritdoc/>
    public override string ToString() => Value ? "true" : "false";
}

/// <summary>A CEL string.</summary>
public sealed class CelString : CelValue
{
    internal CelString(string value) => Value = value;

    /// <summary>The value.</summary>
    public string Value { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.String;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteStringValue(Value);

    /// <inheritdoc/>
    public override string ToString() => JsonSerializer.Serialize(Value);
}

/// <summary>A CEL bytes value.</summary>
public sealed class CelBytes : CelValue
{
    internal CelBytes(byte[] value) => Bytes = value;

    /// <summary>The bytes (do not modify).</summary>
    public ReadOnlyMemory<byte> Value => Bytes;

    internal byte[] Bytes { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Bytes;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteBase64StringValue(Bytes);

    /// <inheritdoc/>
    public override string ToString() => "b\"" + Convert.ToHexString(Bytes) + "\"";
}

/// <summary>The CEL null value.</summary>
public sealed class CelNull : CelValue
{
    internal CelNull()
    {
    }

    /// <inheritdoc/>
    public override CelType Type => CelType.Null;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteNullValue();

    /// <inheritdoc/>
    public override string ToString() => "null";
}

/// <summary>A CEL list.</summary>
public sealed class CelList : CelValue
{
    private static readonly CelType ListDyn = CelType.List(CelType.Dyn);

    internal CelList(CelValue[] items) => Array = items;

    /// <summary>The elements.</summary>
    public IReadOnlyList<CelValue> Items => Array;

    internal CelValue[] Array { get; }

    /// <inheritdoc/>
    public override CelType Type => ListDyn;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer)
    {
        writer.WriteStartArray();
        foreach (var item in Array)
        {
            item.WriteJson(writer);
        }

        writer.WriteEndArray();
    }

    /// <inheritdoc/>
    public override string ToString() => "[" + string.Join(", ", Array.Select(v => v.ToString())) + "]";
}

/// <summary>
/// A CEL map. Keys are int, uint, bool or string and strictly typed: an int key never equals a string key. Numeric keys
/// compare by numeric value across int, uint and double, as the CEL specification says.
/// </summary>
public sealed class CelMap : CelValue
{
    private static readonly CelType MapDyn = CelType.Map(CelType.Dyn, CelType.Dyn);
    private readonly Dictionary<MapKey, KeyValuePair<CelValue, CelValue>> _entries = [];

    internal CelMap()
    {
    }

    /// <summary>The number of entries.</summary>
    public int Count => _entries.Count;

    /// <summary>The entries in insertion order.</summary>
    public IEnumerable<KeyValuePair<CelValue, CelValue>> Entries => _entries.Values;

    /// <inheritdoc/>
    public override CelType Type => MapDyn;

    /// <summary>Looks a key up with CEL's key equality.</summary>
    public bool TryGetValue(CelValue key, out CelValue value)
    {
        if (MapKey.TryLookup(key, out var k) && _entries.TryGetValue(k, out var entry))
        {
            value = entry.Value;
            return true;
        }

        value = null!;
        return false;
    }

    /// <summary>Looks a string key up.</summary>
    public bool TryGetValue(string key, out CelValue value)
    {
        if (_entries.TryGetValue(new MapKey(key), out var entry))
        {
            value = entry.Value;
            return true;
        }

        value = null!;
        return false;
    }

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        foreach (var (k, v) in _entries.Values)
        {
            writer.WritePropertyName(k is CelString s ? s.Value : k.ToString().TrimEnd('u'));
            v.WriteJson(writer);
        }

        writer.WriteEndObject();
    }

    /// <inheritdoc/>
    public override string ToString() => "{" + string.Join(", ", _entries.Values.Select(e => e.Key + ": " + e.Value)) + "}";

    internal IEnumerable<CelValue> Keys => _entries.Values.Select(e => e.Key);

    internal Dictionary<MapKey, KeyValuePair<CelValue, CelValue>>.ValueCollection EntryValues => _entries.Values;

    /// <summary>Adds an entry; returns an error message for an invalid or duplicate key.</summary>
    internal string? TryAdd(CelValue key, CelValue value)
    {
        if (!MapKey.TryCreate(key, out var k))
        {
            return $"unsupported key type: {key.Type}";
        }

        return _entries.TryAdd(k, new(key, value)) ? null : $"Failed with repeated key: {key}";
    }

    internal void Set(CelValue key, CelValue value)
    {
        if (MapKey.TryCreate(key, out var k))
        {
            _entries[k] = new(key, value);
        }
    }
}

/// <summary>A CEL timestamp (google.protobuf.Timestamp) with nanosecond precision, years 0001 to 9999 UTC.</summary>
public sealed class CelTimestamp : CelValue
{
    internal const long MinSeconds = -62135596800;
    internal const long MaxSeconds = 253402300799;

    private CelTimestamp(Int128 nanos) => Nanos = nanos;

    /// <summary>Nanoseconds since the Unix epoch.</summary>
    public Int128 Nanos { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Timestamp;

    /// <summary>The instant, truncated to 100 ns ticks.</summary>
    public DateTimeOffset ToDateTimeOffset() => DateTimeOffset.UnixEpoch.AddTicks((long)Int128.DivRem(Nanos, 100).Quotient);

    internal long Seconds => (long)FloorDiv(Nanos, 1_000_000_000);

    internal int NanoOfSecond => (int)(Nanos - ((Int128)Seconds * 1_000_000_000));

    internal static CelTimestamp? FromNanos(Int128 nanos)
    {
        var s = FloorDiv(nanos, 1_000_000_000);
        return s < MinSeconds || s > MaxSeconds ? null : new CelTimestamp(nanos);
    }

    internal static Int128 FloorDiv(Int128 a, Int128 b)
    {
        var (q, r) = Int128.DivRem(a, b);
        return r < 0 ? q - 1 : q;
    }

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteStringValue(Format());

    /// <inheritdoc/>
    public override string ToString() => "timestamp(\"" + Format() + "\")";

    internal string Format()
    {
        var dt = DateTimeOffset.FromUnixTimeSeconds(Seconds).UtcDateTime;
        var n = NanoOfSecond;
        var frac = n == 0 ? string.Empty : n % 1_000_000 == 0 ? "." + (n / 1_000_000).ToString("D3", CultureInfo.InvariantCulture)
            : n % 1000 == 0 ? "." + (n / 1000).ToString("D6", CultureInfo.InvariantCulture) : "." + n.ToString("D9", CultureInfo.InvariantCulture);
        return dt.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + frac + "Z";
    }
}

/// <summary>A CEL duration (google.protobuf.Duration) with nanosecond precision, within ±315,576,000,000 seconds.</summary>
public sealed class CelDuration : CelValue
{
    internal const long MaxSeconds = 315576000000;

    private CelDuration(Int128 nanos) => Nanos = nanos;

    /// <summary>The length in nanoseconds.</summary>
    public Int128 Nanos { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Duration;

    /// <summary>The duration, truncated to 100 ns ticks; throws <see cref="OverflowException"/> beyond <see cref="TimeSpan"/>.</summary>
    public TimeSpan ToTimeSpan() => TimeSpan.FromTicks(checked((long)(Nanos / 100)));

    internal static CelDuration? FromNanos(Int128 nanos)
    {
        var s = nanos / 1_000_000_000;
        return s < -MaxSeconds || s > MaxSeconds ? null : new CelDuration(nanos);
    }

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteStringValue(Format());

    /// <inheritdoc/>
    public override string ToString() => "duration(\"" + Format() + "\")";

    internal string Format()
    {
        var (s, n) = Int128.DivRem(Nanos, 1_000_000_000);
        var sign = Nanos < 0 ? "-" : string.Empty;
        s = Int128.Abs(s);
        n = Int128.Abs(n);
        var frac = n == 0 ? string.Empty : "." + ((long)n).ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        return sign + s.ToString(CultureInfo.InvariantCulture) + frac + "s";
    }
}

/// <summary>A CEL type value, e.g. the result of <c>type(1)</c> or the identifier <c>int</c>.</summary>
public sealed class CelTypeValue : CelValue
{
    internal CelTypeValue(string name) => Name = name;

    /// <summary>The type name (<c>int</c>, <c>list</c>, <c>google.protobuf.Timestamp</c>...).</summary>
    public string Name { get; }

    /// <inheritdoc/>
    public override CelType Type => CelType.Type;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer) => writer.WriteStringValue(Name);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>A CEL error value. Errors propagate through operators; <c>&amp;&amp;</c> and <c>||</c> absorb them when the other side decides.</summary>
public sealed class CelError : CelValue
{
    internal CelError(string message) => Message = message;

    /// <summary>The message.</summary>
    public string Message { get; }

    /// <inheritdoc/>
    public override bool IsError => true;

    /// <inheritdoc/>
    public override string? ErrorMessage => Message;

    /// <inheritdoc/>
    public override CelType Type => CelType.Dyn;

    /// <inheritdoc/>
    public override void WriteJson(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("error", Message);
        writer.WriteEndObject();
    }

    /// <inheritdoc/>
    public override string ToString() => "error(" + Message + ")";
}

/// <summary>A map key: numbers normalized so that 1, 1u and 1.0 find the same entry; strings and bools apart.</summary>
internal readonly struct MapKey : IEquatable<MapKey>
{
    private const byte KindInt = 1;
    private const byte KindBigUint = 2;
    private const byte KindBool = 3;
    private const byte KindString = 4;

    private readonly byte _kind;
    private readonly long _number;
    private readonly string? _text;

    public MapKey(string text)
    {
        _kind = KindString;
        _number = 0;
        _text = text;
    }

    private MapKey(byte kind, long number)
    {
        _kind = kind;
        _number = number;
        _text = null;
    }

    public static bool TryCreate(CelValue key, out MapKey result)
    {
        switch (key)
        {
            case CelString s:
                result = new MapKey(s.Value);
                return true;
            case CelInt i:
                result = new MapKey(KindInt, i.Value);
                return true;
            case CelUint u:
                result = u.Value <= long.MaxValue ? new MapKey(KindInt, (long)u.Value) : new MapKey(KindBigUint, unchecked((long)u.Value));
                return true;
            case CelBool b:
                result = new MapKey(KindBool, b.Value ? 1 : 0);
                return true;
            default:
                result = default;
                return false;
        }
    }

    /// <summary>Like <see cref="TryCreate"/>, and doubles with an integral value find numeric keys.</summary>
    public static bool TryLookup(CelValue key, out MapKey result)
    {
        if (key is CelDouble d)
        {
            var v = d.Value;
            if (v == Math.Floor(v) && v >= -9.2233720368547758E18 && v < 9.2233720368547758E18)
            {
                result = new MapKey(KindInt, (long)v);
                return true;
            }

            if (v == Math.Floor(v) && v >= 0 && v < 1.8446744073709552E19)
            {
                result = new MapKey(KindBigUint, unchecked((long)(ulong)v));
                return true;
            }

            result = default;
            return false;
        }

        return TryCreate(key, out result);
    }

    public bool Equals(MapKey other) => _kind == other._kind && _number == other._number && string.Equals(_text, other._text, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is MapKey k && Equals(k);

    public override int GetHashCode() => _text is null ? HashCode.Combine(_kind, _number) : _text.GetHashCode(StringComparison.Ordinal);
}
