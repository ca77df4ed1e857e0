using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Policy.Bundles;
using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class BundleFormatTests
{
    private static IReadOnlyList<PolicyBundleError> ErrorsOf(string json)
    {
        Assert.False(PolicyBundle.TryParse(json, out var bundle, out var errors));
        Assert.Null(bundle);
        Assert.NotEmpty(errors);
        return errors;
    }

    [Fact]
    public void A_valid_bundle_is_read_with_its_rules_in_order()
    {
        var b = PolicyBundle.Parse(TestBundles.Simple);
        Assert.Equal(PolicyScope.Domain, b.Scope);
        Assert.Equal("acme.example/prod", b.Domain);
        Assert.Equal(7, b.Epoch);
        Assert.Equal(["allow-deploy", "deny-db"], b.Rules.Select(r => r.Id));
        Assert.Equal(RuleEffect.Allow, b.Rules[0].Effect);
        Assert.Equal(600, b.Rules[0].Obligations!.MaxLeaseSeconds);
        Assert.Null(b.Rules[1].Condition);
        Assert.Matches("^sha256:[0-9a-f]{64}$", b.Digest);
    }

    [Fact]
    public void The_digest_ignores_formatting_member_order_digest_and_signatures()
    {
        var a = PolicyBundle.Parse(TestBundles.Simple).Digest;
        var reordered = TestBundles.Edit(TestBundles.Simple, o =>
        {
            var rules = o["rules"]!;
            o.Remove("rules");
            o["signatures"] = new JsonArray(new JsonObject { ["keyId"] = "k", ["sig"] = "AAAA" });
            o.Insert(0, "rules", rules);
        });
        Assert.Equal(a, PolicyBundle.Parse(reordered).Digest);
    }

    [Fact]
    public void Any_change_to_a_rule_changes_the_digest()
    {
        var a = PolicyBundle.Parse(TestBundles.Simple).Digest;
        var b = PolicyBundle.Parse(TestBundles.Edit(TestBundles.Simple, o => o["rules"]![1]!["effect"] = "allow")).Digest;
        Assert.NotEqual(a, b);
    }

    [Fact]
    public void A_declared_digest_that_does_not_match_the_content_is_refused_as_tampering()
    {
        var digested = PolicyBundleSigning.WithDigest(TestBundles.Simple);
        Assert.NotNull(PolicyBundle.Parse(digested).DeclaredDigest);
        var tampered = TestBundles.Edit(digested, o => o["rules"]![1]!["effect"] = "allow");
        var e = Assert.Single(ErrorsOf(tampered));
        Assert.Equal(PolicyBundleErrorKind.DigestMismatch, e.Kind);
    }

    [Fact]
    public void A_misspelt_condition_member_is_an_error_and_never_an_unconditional_rule()
    {
        var json = TestBundles.Edit(TestBundles.Simple, o =>
        {
            var rule = o["rules"]![0]!.AsObject();
            var c = rule["condition"]!.GetValue<string>();
            rule.Remove("condition");
            rule["condtion"] = c;
        });
        var e = Assert.Single(ErrorsOf(json));
        Assert.Equal(PolicyBundleErrorKind.Schema, e.Kind);
        Assert.Equal("rules[0].condtion", e.Path);
        Assert.Equal("allow-deploy", e.RuleId);
        Assert.Equal(0, e.RuleIndex);
    }

    [Fact]
    public void Every_error_of_a_bundle_is_listed_not_only_the_first()
    {
        var json = TestBundles.Edit(TestBundles.Simple, o =>
        {
            o["scope"] = "galaxy";
            o["epoch"] = -1;
            o["rules"]![0]!["effect"] = "permit";
            o["rules"]![1]!["id"] = "allow-deploy";
            o["rules"]![1]!["match"]!["resources"] = new JsonArray("k8s://***");
        });
        var errors = ErrorsOf(json);
        Assert.Contains(errors, e => e.Path == "scope");
        Assert.Contains(errors, e => e.Path == "epoch");
        Assert.Contains(errors, e => e.Path == "rules[0].effect" && e.RuleId == "allow-deploy");
        Assert.Contains(errors, e => e.Path == "rules[1].match.resources[0]" && e.Kind == PolicyBundleErrorKind.Selector);
    }

    [Fact]
    public void Duplicate_rule_ids_are_refused_naming_both_positions()
    {
        var json = TestBundles.Edit(TestBundles.Simple, o => o["rules"]![1]!["id"] = "allow-deploy");
        var e = Assert.Single(ErrorsOf(json));
        Assert.Equal(PolicyBundleErrorKind.DuplicateRule, e.Kind);
        Assert.Equal(1, e.RuleIndex);
        Assert.Contains("rules[0]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_duplicated_json_member_is_refused()
    {
        var json = TestBundles.Simple.Replace("\"epoch\": 7,", "\"epoch\": 7, \"epoch\": 9,", StringComparison.Ordinal);
        Assert.Contains(ErrorsOf(json), e => e.Path == "epoch" && e.Message.Contains("more than once", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("match", PolicyBundleErrorKind.Selector)]
    [InlineData("id", PolicyBundleErrorKind.Schema)]
    [InlineData("effect", PolicyBundleErrorKind.Schema)]
    public void A_rule_without_a_required_member_is_refused(string member, PolicyBundleErrorKind kind)
    {
        var json = TestBundles.Edit(TestBundles.Simple, o => o["rules"]![0]!.AsObject().Remove(member));
        Assert.Contains(ErrorsOf(json), e => e.Kind == kind && e.RuleIndex == 0);
    }

    [Theory]
    [InlineData("""{ "actions": [], "resources": ["x"] }""")]
    [InlineData("""{ "actions": ["deploy"], "resources": [] }""")]
    [InlineData("""{ "actions": ["de*"], "resources": ["x"] }""")]
    [InlineData("""{ "actions": ["deploy"] }""")]
    [InlineData("""{ "actions": ["deploy"], "resources": ["x"], "principals": ["y"] }""")]
    public void An_empty_or_malformed_selector_is_refused(string match)
    {
        var json = TestBundles.Edit(TestBundles.Simple, o => o["rules"]![1]!["match"] = JsonNode.Parse(match));
        Assert.Contains(ErrorsOf(json), e => e.RuleIndex == 1 && e.Path.StartsWith("rules[1].match", StringComparison.Ordinal));
    }

    [Fact]
    public void Obligations_on_a_deny_rule_are_refused()
    {
        var json = TestBundles.Edit(TestBundles.Simple, o => o["rules"]![1]!["obligations"] = new JsonObject { ["maxLeaseSeconds"] = 5 });
        Assert.Contains(ErrorsOf(json), e => e.Path == "rules[1].obligations");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("1.5")]
    [InlineData("\"600\"")]
    public void A_lease_obligation_must_be_a_positive_integer(string value)
    {
        var json = TestBundles.Edit(TestBundles.Simple, o => o["rules"]![0]!["obligations"]!["maxLeaseSeconds"] = JsonNode.Parse(value));
        Assert.Contains(ErrorsOf(json), e => e.Path == "rules[0].obligations.maxLeaseSeconds");
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("{\"format\": \"meshbus-policy/v1\",}")]
    public void Unreadable_documents_are_refused_with_a_reason(string json)
    {
        Assert.NotEmpty(ErrorsOf(json));
    }

    [Fact]
    public void Unknown_formats_are_refused()
    {
        var json = TestBundles.Edit(TestBundles.Simple, o => o["format"] = "meshbus-policy/v2");
        Assert.Contains(ErrorsOf(json), e => e.Path == "format");
    }
}
