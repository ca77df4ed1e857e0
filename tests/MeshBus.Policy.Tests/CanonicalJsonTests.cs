using System.Text;
using System.Text.Json;
using MeshBus.Policy.Bundles;
using Xunit;

namespace MeshBus.Policy.Tests;

public sealed class CanonicalJsonTests
{
    private static string Canon(string json, params string[] omit)
    {
        using var doc = JsonDocument.Parse(json);
        return Encoding.UTF8.GetString(PolicyCanonicalJson.Canonicalize(doc.RootElement, omit));
    }

    [Fact]
    public void Members_are_sorted_by_utf16_code_units_as_in_rfc8785_section_3_2_3()
    {
        // RFC 8785 §3.2.3 sorting example (values replaced by their expected rank).
        var json = """{"\u20ac":"euro","\r":"cr","\ufb33":"hebrew","1":"one","\ud83d\ude00":"emoji","\u0080":"control","\u00f6":"o-umlaut"}""";
        var names = JsonDocument.Parse(Canon(json)).RootElement.EnumerateObject().Select(p => p.Value.GetString()!).ToArray();
        Assert.Equal(["cr", "one", "control", "o-umlaut", "euro", "emoji", "hebrew"], names);
    }

    [Fact]
    public void Strings_use_the_minimal_escapes_of_rfc8785()
    {
        // The string and literals of the RFC 8785 §3.2.2 example (its floating-point numbers are outside MeshBus's subset).
        var json = """{"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null, true, false]}""";
        Assert.Equal("{\"literals\":[null,true,false],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}", Canon(json));
    }

    [Fact]
    public void Whitespace_and_member_order_do_not_change_the_canonical_form()
    {
        Assert.Equal(Canon("""{"b":[1, 2,{"y":1,"x":-3}],"a":"s"}"""), Canon("""{ "a" : "s", "b" : [ 1,2, { "x":-3, "y":1 } ] }"""));
    }

    [Fact]
    public void Omitted_top_level_members_are_left_out_but_nested_ones_with_the_same_name_are_kept()
    {
        Assert.Equal("""{"a":{"digest":1}}""", Canon("""{"digest":"x","a":{"digest":1},"signatures":[]}""", "digest", "signatures"));
    }

    [Theory]
    [InlineData("""{"n":1.5}""")]
    [InlineData("""{"n":9007199254740993}""")]
    [InlineData("""{"a":1,"a":2}""")]
    public void Numbers_outside_the_integer_subset_and_duplicate_members_are_refused(string json)
    {
        Assert.ThrowsAny<FormatException>(() => Canon(json));
    }

    [Fact]
    public void An_integral_number_in_exponent_form_canonicalizes_to_its_digits()
    {
        // The shared canonicalizer (MeshBus.Trust) reads 1e3 as the integer 1000; RFC 8785 writes it as 1000.
        Assert.Equal("""{"n":1000}""", Canon("""{"n":1e3}"""));
    }
}
