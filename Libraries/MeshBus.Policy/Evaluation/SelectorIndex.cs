using MeshBus.Policy.Bundles;

namespace MeshBus.Policy.Evaluation;

/// <summary>
/// Finds the rules whose declared selector matches an action and a resource, without looking at every rule. Built only
/// from <see cref="RuleSelector"/>s, never from condition text: a rule is a candidate for an action when it lists that
/// action or <c>*</c>; the resource patterns of each candidate are then checked exactly. The result is the same set, in
/// the same (document) order, as checking every rule's selector (see the differential tests).
/// </summary>
internal sealed class SelectorIndex
{
    private readonly RuleSelector[] _selectors;
    private readonly Dictionary<string, int[]> _byAction;
    private readonly int[] _anyAction;

    public SelectorIndex(IReadOnlyList<RuleSelector> selectors)
    {
        _selectors = [.. selectors];
        var any = new List<int>();
        var named = new Dictionary<string, SortedSet<int>>(StringComparer.Ordinal);
        for (var i = 0; i < _selectors.Length; i++)
        {
            foreach (var a in _selectors[i].Actions)
            {
                if (a == RuleSelector.AnyAction)
                {
                    any.Add(i);
                }
                else
                {
                    if (!named.TryGetValue(a, out var set))
                    {
                        named[a] = set = [];
                    }

                    set.Add(i);
                }
            }
        }

        _anyAction = [.. any.Distinct().Order()];
        _byAction = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (action, set) in named)
        {
            set.UnionWith(_anyAction);
            _byAction[action] = [.. set];
        }
    }

    /// <summary>Rules (by index) listing the action or <c>*</c>, in document order; their resources still need checking.</summary>
    public int[] CandidatesFor(string action) =>
        _byAction.TryGetValue(action, out var list) ? list : _anyAction;

    /// <summary>Whether candidate <paramref name="rule"/> matches <paramref name="resource"/> (its action is already known to match).</summary>
    public bool ResourceMatches(int rule, string resource)
    {
        foreach (var p in _selectors[rule].Resources)
        {
            if (p.IsMatch(resource))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Every rule whose selector matches, in document order (for tests and tools).</summary>
    public List<int> Matching(string action, string resource)
    {
        var result = new List<int>();
        foreach (var i in CandidatesFor(action))
        {
            if (ResourceMatches(i, resource))
            {
                result.Add(i);
            }
        }

        return result;
    }
}
