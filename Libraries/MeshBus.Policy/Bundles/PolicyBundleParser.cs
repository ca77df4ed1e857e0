using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MeshBus.Contracts;

namespace MeshBus.Policy.Bundles;

/// <summary>
/// Strict reader of <c>meshbus-policy/v1</c> documents. Unknown or duplicated members are errors: a misspelt
/// <c>condtion</c> must never leave an allow rule without its condition.
/// </summary>
internal static partial class PolicyBundleParser
{
    private const int MaxDepth = 32;

    private static readonly string[] TopLevelMembers = ["format", "scope", "domain", "epoch", "description", "rules", "digest", "signatures"];
    private static readonly string[] RuleMembers = ["id", "description", "effect", "match", "condition", "obligations"];
    private static readonly string[] MatchMembers = ["actions", "resources"];
    private static readonly string[] ObligationMembers = ["maxLeaseSeconds"];
    private static readonly string[] SignatureMembers = ["keyId", "sig"];

    /// <summary>Members left out of the canonical form the digest covers.</summary>
    internal static readonly string[] UnsignedMembers = ["digest", "signatures"];

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex RuleIdRegex();

    [GeneratedRegex("^sha256:[0-9a-f]{64}$", RegexOptions.CultureInvariant)]
    private static partial Regex DigestRegex();

    public static PolicyBundle? Parse(string json, List<PolicyBundleError> errors)
    {
        if (Encoding.UTF8.GetByteCount(json) > PolicyBundle.MaxDocumentBytes)
        {
            errors.Add(new(PolicyBundleErrorKind.Syntax, "", $"the document is larger than {PolicyBundle.MaxDocumentBytes} bytes"));
            return null;
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = MaxDepth, AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            errors.Add(new(PolicyBundleErrorKind.Syntax, "", "not valid JSON: " + FirstSentence(e.Message), Line: (int?)(e.LineNumber + 1), Column: (int?)(e.BytePositionInLine + 1)));
            return null;
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "", "a bundle is a JSON object"));
                return null;
            }

            CheckDuplicates(root, "", errors);
            if (errors.Count > 0)
            {
                return null;
            }

            CheckMembers(root, "", TopLevelMembers, errors);
            var format = RequiredString(root, "", "format", errors);
            if (format is not null && format != PolicyBundle.Format)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "format", $"unknown format '{format}' (expected '{PolicyBundle.Format}')"));
            }

            PolicyScope? scope = null;
            var scopeText = RequiredString(root, "", "scope", errors);
            if (scopeText is not null)
            {
                scope = scopeText switch
                {
                    "domain" => PolicyScope.Domain,
                    "egress" => PolicyScope.Egress,
                    "federation" => PolicyScope.Federation,
                    _ => null,
                };
                if (scope is null)
                {
                    errors.Add(new(PolicyBundleErrorKind.Schema, "scope", $"scope must be 'domain', 'egress' or 'federation', not '{scopeText}'"));
                }
            }

            var domain = RequiredString(root, "", "domain", errors);
            long epoch = 0;
            if (!root.TryGetProperty("epoch", out var epochElement))
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "epoch", "missing required member 'epoch'"));
            }
            else if (!TryNonNegativeSafeInteger(epochElement, out epoch))
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "epoch", "epoch must be an integer between 0 and 2^53"));
            }

            if (root.TryGetProperty("description", out var description) && description.ValueKind != JsonValueKind.String)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "description", "description must be a string"));
            }

            var rules = new List<PolicyRule>();
            if (!root.TryGetProperty("rules", out var rulesElement))
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "rules", "missing required member 'rules'"));
            }
            else if (rulesElement.ValueKind != JsonValueKind.Array)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "rules", "rules must be an array"));
            }
            else if (rulesElement.GetArrayLength() > PolicyBundle.MaxRules)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "rules", $"a bundle holds at most {PolicyBundle.MaxRules} rules"));
            }
            else
            {
                var ids = new Dictionary<string, int>(StringComparer.Ordinal);
                var index = 0;
                foreach (var r in rulesElement.EnumerateArray())
                {
                    var rule = ParseRule(r, index, errors);
                    if (rule is not null)
                    {
                        if (ids.TryGetValue(rule.Id, out var firstIndex))
                        {
                            errors.Add(new(PolicyBundleErrorKind.DuplicateRule, $"rules[{index}].id", $"rule id '{rule.Id}' is already used by rules[{firstIndex}]", rule.Id, index));
                        }
                        else
                        {
                            ids[rule.Id] = index;
                        }

                        rules.Add(rule);
                    }

                    index++;
                }
            }

            string? declaredDigest = null;
            if (root.TryGetProperty("digest", out var digestElement))
            {
                declaredDigest = digestElement.ValueKind == JsonValueKind.String ? digestElement.GetString() : null;
                if (declaredDigest is null || !DigestRegex().IsMatch(declaredDigest))
                {
                    errors.Add(new(PolicyBundleErrorKind.Schema, "digest", "digest must be 'sha256:' followed by 64 lowercase hex digits"));
                    declaredDigest = null;
                }
            }

            var signatures = new List<PolicySignature>();
            if (root.TryGetProperty("signatures", out var sigs))
            {
                if (sigs.ValueKind != JsonValueKind.Array)
                {
                    errors.Add(new(PolicyBundleErrorKind.Schema, "signatures", "signatures must be an array"));
                }
                else
                {
                    var i = 0;
                    foreach (var s in sigs.EnumerateArray())
                    {
                        var path = $"signatures[{i++}]";
                        if (s.ValueKind != JsonValueKind.Object)
                        {
                            errors.Add(new(PolicyBundleErrorKind.Schema, path, "a signature is an object {keyId, sig}"));
                            continue;
                        }

                        CheckMembers(s, path, SignatureMembers, errors);
                        var keyId = RequiredString(s, path, "keyId", errors);
                        var sig = RequiredString(s, path, "sig", errors);
                        if (keyId is not null && sig is not null)
                        {
                            signatures.Add(new PolicySignature(keyId, sig));
                        }
                    }
                }
            }

            byte[] canonical;
            try
            {
                canonical = PolicyCanonicalJson.Canonicalize(root, UnsignedMembers);
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, "", "cannot be canonicalized (RFC 8785): " + e.Message));
                return null;
            }

            var digest = DigestOf(canonical);
            if (declaredDigest is not null && declaredDigest != digest)
            {
                errors.Add(new(PolicyBundleErrorKind.DigestMismatch, "digest", $"declared digest {declaredDigest} is not the digest of the content ({digest}): the bundle was modified after it was digested"));
            }

            if (errors.Count > 0 || scope is null || domain is null)
            {
                return null;
            }

            return new PolicyBundle(scope.Value, domain, epoch, rules, digest, declaredDigest, signatures, canonical);
        }
    }

    internal static string DigestOf(byte[] canonical) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(canonical));

    private static PolicyRule? ParseRule(JsonElement r, int index, List<PolicyBundleError> errors)
    {
        var path = $"rules[{index}]";
        if (r.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new(PolicyBundleErrorKind.Schema, path, "a rule is an object", RuleIndex: index));
            return null;
        }

        var before = errors.Count;
        var id = RequiredString(r, path, "id", errors);
        if (id is not null && !RuleIdRegex().IsMatch(id))
        {
            errors.Add(new(PolicyBundleErrorKind.Schema, path + ".id", $"rule id '{id}' must be 1–128 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit", RuleIndex: index));
            id = null;
        }

        var at = errors.Count;
        CheckMembers(r, path, RuleMembers, errors);
        string? description = null;
        if (r.TryGetProperty("description", out var d))
        {
            if (d.ValueKind == JsonValueKind.String)
            {
                description = d.GetString();
            }
            else
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, path + ".description", "description must be a string"));
            }
        }

        RuleEffect? effect = null;
        var effectText = RequiredString(r, path, "effect", errors);
        if (effectText is not null)
        {
            effect = effectText switch
            {
                "allow" => RuleEffect.Allow,
                "deny" => RuleEffect.Deny,
                _ => null,
            };
            if (effect is null)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, path + ".effect", $"effect must be 'allow' or 'deny', not '{effectText}'"));
            }
        }

        var match = ParseSelector(r, path, errors);

        string? condition = null;
        if (r.TryGetProperty("condition", out var c))
        {
            if (c.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(c.GetString()))
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, path + ".condition", "condition must be a non-empty CEL expression string (leave the member out for a rule without condition)"));
            }
            else
            {
                condition = c.GetString();
            }
        }

        RuleObligations? obligations = null;
        if (r.TryGetProperty("obligations", out var o))
        {
            var op = path + ".obligations";
            if (o.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, op, "obligations must be an object"));
            }
            else
            {
                CheckMembers(o, op, ObligationMembers, errors);
                long? maxLease = null;
                if (o.TryGetProperty("maxLeaseSeconds", out var ml))
                {
                    if (TryNonNegativeSafeInteger(ml, out var v) && v > 0)
                    {
                        maxLease = v;
                    }
                    else
                    {
                        errors.Add(new(PolicyBundleErrorKind.Schema, op + ".maxLeaseSeconds", "maxLeaseSeconds must be a positive integer"));
                    }
                }

                if (effect == RuleEffect.Deny)
                {
                    errors.Add(new(PolicyBundleErrorKind.Schema, op, "a deny rule has no obligations (they apply to allows)"));
                }

                obligations = new RuleObligations(maxLease);
            }
        }

        // Attach the rule id to every error found inside this rule.
        if (id is not null)
        {
            for (var i = at; i < errors.Count; i++)
            {
                errors[i] = errors[i] with { RuleId = id, RuleIndex = index };
            }
        }
        else
        {
            for (var i = before; i < errors.Count; i++)
            {
                errors[i] = errors[i] with { RuleIndex = index };
            }
        }

        return errors.Count > before || id is null || effect is null || match is null
            ? null
            : new PolicyRule(index, id, description, effect.Value, match, condition, obligations);
    }

    private static RuleSelector? ParseSelector(JsonElement r, string rulePath, List<PolicyBundleError> errors)
    {
        var path = rulePath + ".match";
        if (!r.TryGetProperty("match", out var m))
        {
            errors.Add(new(PolicyBundleErrorKind.Selector, path, "missing required member 'match' (every rule declares the actions and resources it applies to)"));
            return null;
        }

        if (m.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new(PolicyBundleErrorKind.Selector, path, "match must be an object {actions, resources}"));
            return null;
        }

        var before = errors.Count;
        CheckMembers(m, path, MatchMembers, errors);
        var actions = StringList(m, path, "actions", errors);
        var resourceTexts = StringList(m, path, "resources", errors);
        var resources = new List<ResourcePattern>();
        if (actions is not null)
        {
            for (var i = 0; i < actions.Count; i++)
            {
                if (actions[i].Length == 0 || actions[i].Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch)) || (actions[i].Contains('*', StringComparison.Ordinal) && actions[i] != RuleSelector.AnyAction))
                {
                    errors.Add(new(PolicyBundleErrorKind.Selector, $"{path}.actions[{i}]", $"action '{actions[i]}' must be a non-empty name without whitespace, or '*' alone for every action"));
                }
            }
        }

        if (resourceTexts is not null)
        {
            for (var i = 0; i < resourceTexts.Count; i++)
            {
                var p = ResourcePattern.TryParse(resourceTexts[i], out var error);
                if (p is null)
                {
                    errors.Add(new(PolicyBundleErrorKind.Selector, $"{path}.resources[{i}]", error!));
                }
                else
                {
                    resources.Add(p);
                }
            }
        }

        return errors.Count > before || actions is null || resourceTexts is null ? null : new RuleSelector(actions, resources);
    }

    private static List<string>? StringList(JsonElement obj, string path, string name, List<PolicyBundleError> errors)
    {
        if (!obj.TryGetProperty(name, out var a))
        {
            errors.Add(new(PolicyBundleErrorKind.Selector, $"{path}.{name}", $"missing required member '{name}'"));
            return null;
        }

        if (a.ValueKind != JsonValueKind.Array || a.GetArrayLength() == 0)
        {
            errors.Add(new(PolicyBundleErrorKind.Selector, $"{path}.{name}", $"{name} must be a non-empty array of strings"));
            return null;
        }

        var list = new List<string>();
        var i = 0;
        foreach (var e in a.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String)
            {
                errors.Add(new(PolicyBundleErrorKind.Selector, $"{path}.{name}[{i}]", "must be a string"));
                return null;
            }

            list.Add(e.GetString()!);
            i++;
        }

        return list;
    }

    private static string? RequiredString(JsonElement obj, string path, string name, List<PolicyBundleError> errors)
    {
        var p = path.Length == 0 ? name : $"{path}.{name}";
        if (!obj.TryGetProperty(name, out var v))
        {
            errors.Add(new(PolicyBundleErrorKind.Schema, p, $"missing required member '{name}'"));
            return null;
        }

        if (v.ValueKind != JsonValueKind.String || v.GetString()!.Length == 0)
        {
            errors.Add(new(PolicyBundleErrorKind.Schema, p, $"'{name}' must be a non-empty string"));
            return null;
        }

        return v.GetString();
    }

    private static void CheckMembers(JsonElement obj, string path, string[] allowed, List<PolicyBundleError> errors)
    {
        foreach (var p in obj.EnumerateObject())
        {
            if (Array.IndexOf(allowed, p.Name) < 0)
            {
                errors.Add(new(PolicyBundleErrorKind.Schema, path.Length == 0 ? p.Name : $"{path}.{p.Name}", $"unknown member '{p.Name}' (allowed: {string.Join(", ", allowed)})"));
            }
        }
    }

    private static void CheckDuplicates(JsonElement e, string path, List<PolicyBundleError> errors)
    {
        if (e.ValueKind == JsonValueKind.Object)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in e.EnumerateObject())
            {
                var child = path.Length == 0 ? p.Name : $"{path}.{p.Name}";
                if (!seen.Add(p.Name))
                {
                    errors.Add(new(PolicyBundleErrorKind.Schema, child, $"member '{p.Name}' appears more than once"));
                }

                CheckDuplicates(p.Value, child, errors);
            }
        }
        else if (e.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in e.EnumerateArray())
            {
                CheckDuplicates(item, $"{path}[{i++}]", errors);
            }
        }
    }

    private static bool TryNonNegativeSafeInteger(JsonElement e, out long value)
    {
        value = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out value) && value >= 0 && value <= 9_007_199_254_740_992;
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }
}
