namespace MeshBus.Policy.Cel;

/// <summary>The kind of a <see cref="CelType"/>.</summary>
public enum CelTypeKind
{
    /// <summary>Signed 64-bit integer.</summary>
    Int,

    /// <summary>Unsigned 64-bit integer.</summary>
    Uint,

    /// <summary>IEEE 754 double.</summary>
    Double,

    /// <summary>Boolean.</summary>
    Bool,

    /// <summary>Unicode string.</summary>
    String,

    /// <summary>Byte sequence.</summary>
    Bytes,

    /// <summary>The null type.</summary>
    Null,

    /// <summary>Dynamic: checked at evaluation time.</summary>
    Dyn,

    /// <summary>google.protobuf.Timestamp.</summary>
    Timestamp,

    /// <summary>google.protobuf.Duration.</summary>
    Duration,

    /// <summary>The type of types.</summary>
    Type,

    /// <summary>A list with an element type.</summary>
    List,

    /// <summary>A map with key and value types.</summary>
    Map,

    /// <summary>A declared message-like shape with named fields (evaluated as a string-keyed map).</summary>
    Object,
}

/// <summary>
/// A CEL type, used to declare the variables of a <see cref="CelEnvironment"/> and reported as
/// <see cref="CelProgram.ResultType"/>. Immutable; compare with <see cref="Equals(CelType?)"/>.
/// </summary>
public sealed class CelType : IEquatable<CelType>
{
    private static readonly IReadOnlyDictionary<string, CelType> NoFields = new Dictionary<string, CelType>();

    private CelType(CelTypeKind kind, string name, CelType? element = null, CelType? key = null, CelType? value = null, IReadOnlyDictionary<string, CelType>? fields = null)
    {
        Kind = kind;
        Name = name;
        ElementType = element;
        KeyType = key;
        ValueType = value;
        Fields = fields ?? NoFields;
    }

    /// <summary>int.</summary>
    public static CelType Int { get; } = new(CelTypeKind.Int, "int");

    /// <summary>uint.</summary>
    public static CelType Uint { get; } = new(CelTypeKind.Uint, "uint");

    /// <summary>double.</summary>
    public static CelType Double { get; } = new(CelTypeKind.Double, "double");

    /// <summary>bool.</summary>
    public static CelType Bool { get; } = new(CelTypeKind.Bool, "bool");

    /// <summary>string.</summary>
    public static CelType String { get; } = new(CelTypeKind.String, "string");

    /// <summary>bytes.</summary>
    public static CelType Bytes { get; } = new(CelTypeKind.Bytes, "bytes");

    /// <summary>null_type.</summary>
    public static CelType Null { get; } = new(CelTypeKind.Null, "null_type");

    /// <summary>dyn: any value, checked when evaluated.</summary>
    public static CelType Dyn { get; } = new(CelTypeKind.Dyn, "dyn");

    /// <summary>google.protobuf.Timestamp.</summary>
    public static CelType Timestamp { get; } = new(CelTypeKind.Timestamp, "google.protobuf.Timestamp");

    /// <summary>google.protobuf.Duration.</summary>
    public static CelType Duration { get; } = new(CelTypeKind.Duration, "google.protobuf.Duration");

    /// <summary>type: the type of type values such as <c>int</c>.</summary>
    public static CelType Type { get; } = new(CelTypeKind.Type, "type");

    /// <summary>The kind of this type.</summary>
    public CelTypeKind Kind { get; }

    /// <summary>The CEL name: <c>int</c>, <c>list</c>, <c>map</c>, or the declared object name.</summary>
    public string Name { get; }

    /// <summary>The element type of a list, otherwise null.</summary>
    public CelType? ElementType { get; }

    /// <summary>The key type of a map, otherwise null.</summary>
    public CelType? KeyType { get; }

    /// <summary>The value type of a map, otherwise null.</summary>
    public CelType? ValueType { get; }

    /// <summary>The declared fields of an object type (empty for other kinds).</summary>
    public IReadOnlyDictionary<string, CelType> Fields { get; }

    /// <summary><c>list(element)</c>.</summary>
    public static CelType List(CelType element)
    {
        ArgumentNullException.ThrowIfNull(element);
        return new(CelTypeKind.List, "list", element: element);
    }

    /// <summary><c>map(key, value)</c>; map values only ever hold int, uint, bool or string keys.</summary>
    public static CelType Map(CelType key, CelType value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return new(CelTypeKind.Map, "map", key: key, value: value);
    }

    /// <summary>
    /// A declared message-like shape (e.g. <c>intent</c> with fields <c>action</c>, <c>resource</c>). Selecting an
    /// undeclared field is a compile error; at evaluation the value is a string-keyed map.
    /// </summary>
    public static CelType Object(string name, IReadOnlyDictionary<string, CelType> fields)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(fields);
        return new(CelTypeKind.Object, name, fields: new Dictionary<string, CelType>(fields, StringComparer.Ordinal));
    }

    /// <inheritdoc/>
    public bool Equals(CelType? other)
    {
        if (ReferenceEquals(this, other))
        {
            return true;
        }

        if (other is null || other.Kind != Kind)
        {
            return false;
        }

        return Kind switch
        {
            CelTypeKind.List => ElementType!.Equals(other.ElementType),
            CelTypeKind.Map => KeyType!.Equals(other.KeyType) && ValueType!.Equals(other.ValueType),
            CelTypeKind.Object => Name == other.Name,
            _ => true,
        };
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as CelType);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, Name);

    /// <summary>The type as CEL writes it, e.g. <c>map(string, list(int))</c>.</summary>
    public override string ToString() => Kind switch
    {
        CelTypeKind.List => $"list({ElementType})",
        CelTypeKind.Map => $"map({KeyType}, {ValueType})",
        _ => Name,
    };
}
