using System.Text.Json;
using MeshBus.Policy.Bundles;
using MeshBus.Policy.Cel;
using MeshBus.Policy.Evaluation;

namespace MeshBus.Policy.Tooling;

/// <summary>
/// Everything wrong with a bundle document at once (<c>meshbus policy lint</c>): structure, selectors, digest, and every
/// condition compiled against the input schema, even when other parts of the document are broken. Signatures are not
/// checked (that needs the domain's keys).
/// </summary>
public static class PolicyLint
{
    /// <summary>Every problem found, in document order of discovery; empty when the bundle would load.</summary>
    public static IReadOnlyList<PolicyBundleError> Check(string bundleJson, CelLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(bundleJson);
        if (PolicyBundle.TryParse(bundleJson, out var bundle, out var errors))
        {
            return CompiledPolicy.TryCompile(bundle!, out _, out var compileErrors, limits) ? [] : compileErrors;
        }

        var all = new List<PolicyBundleError>(errors);
        if (all.Exists(e => e.Kind == PolicyBundleErrorKind.Syntax))
        {
            return all;
        }

        // The structure is broken somewhere: still compile every condition that can be found, so one run lists them all.
        using var doc = JsonDocument.Parse(bundleJson);
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("rules", out var rules) || rules.ValueKind != JsonValueKind.Array)
        {
            return all;
        }

        var env = CelEnvironment.Create(PolicyInputSchema.Variables, limits);
        var index = 0;
        foreach (var rule in rules.EnumerateArray())
        {
            if (rule.ValueKind == JsonValueKind.Object
                && rule.TryGetProperty("condition", out var c) && c.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(c.GetString()))
            {
                var id = rule.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String ? idElement.GetString() : null;
                var path = $"rules[{index}].condition";
                try
                {
                    var program = env.Compile(c.GetString()!);
                    if (!CelInput.IsBooleanType(program.ResultType))
                    {
                        all.Add(new(PolicyBundleErrorKind.Condition, path, $"a condition must be boolean, this one is {program.ResultType}", id, index, 1, 1));
                    }
                }
                catch (CelCompileException e)
                {
                    all.Add(new(PolicyBundleErrorKind.Condition, path, e.Message, id, index, e.Line, e.Column));
                }
            }

            index++;
        }

        return all;
    }
}
