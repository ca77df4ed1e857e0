using System.Text.Json;
using MeshBus.Contracts;

namespace MeshBus.Workers.Authorize.Checks;

/// <summary>Shape checks of an intent before anything else reads it (DESIGN.md §8 rule 7).</summary>
public static class IntentShape
{
    /// <summary>The largest integer magnitude a parameter may carry (2^53).</summary>
    public const long MaxSafeInteger = 1L << 53;

    private const int MaxDepth = 32;
    private const int MaxFieldLength = 4096;

    /// <summary>Null when well-formed, else what is wrong.</summary>
    public static string? Problem(IntentSubmitted intent)
    {
        if (intent.IntentId == Guid.Empty)
        {
            return "intentId is missing";
        }

        foreach (var (name, value) in new[]
        {
            ("domain", intent.Domain), ("agent", intent.Agent), ("targetDomain", intent.TargetDomain),
            ("action", intent.Action), ("resource", intent.Resource), ("nonce", intent.Nonce),
            ("credential", intent.Credential), ("signature", intent.Signature),
        })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                return name + " is missing";
            }

            if (value.Length > MaxFieldLength && name is not "credential")
            {
                return $"{name} is longer than {MaxFieldLength} characters";
            }
        }

        if (intent.MaxDurationSeconds is <= 0 or > MaxSafeInteger)
        {
            // Outside ±2^53 the canonical form cannot hold it: malformed, never a signature failure.
            return "maxDurationSeconds must be a positive integer within 2^53";
        }

        if (intent.IssuedAt == default)
        {
            return "issuedAt is missing";
        }

        if (intent.Parameters is { } p)
        {
            if (p.ValueKind != JsonValueKind.Object)
            {
                return $"parameters must be a JSON object, not {p.ValueKind}";
            }

            return ValueProblem(p, "parameters", 0);
        }

        return null;
    }

    private static string? ValueProblem(JsonElement e, string path, int depth)
    {
        if (depth > MaxDepth)
        {
            return $"{path}: nested deeper than {MaxDepth}";
        }

        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var m in e.EnumerateObject())
                {
                    if (ValueProblem(m.Value, path + "." + m.Name, depth + 1) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    if (ValueProblem(item, $"{path}[{i++}]", depth + 1) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonValueKind.Number:
                return e.TryGetInt64(out var n) && n is >= -MaxSafeInteger and <= MaxSafeInteger
                    ? null
                    : $"{path}: numbers must be integers within ±2^53 (send larger or fractional values as strings)";
            default:
                return null;
        }
    }
}
