namespace MeshBus.Policy.Cel;

/// <summary>The variable values of one evaluation.</summary>
public sealed class CelActivation
{
    private readonly IReadOnlyDictionary<string, CelValue> _values;

    private CelActivation(IReadOnlyDictionary<string, CelValue> values) => _values = values;

    /// <summary>Binds variables by name. Variables declared but absent evaluate to an error value.</summary>
    public static CelActivation Create(IReadOnlyDictionary<string, CelValue> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new CelActivation(values);
    }

    internal bool TryGet(string name, out CelValue value) => _values.TryGetValue(name, out value!);
}
