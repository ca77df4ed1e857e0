using System.Text;

namespace MeshBus.Trust.Tests;

public sealed class CanonicalTests
{
    private static string Canon(string json) => Encoding.UTF8.GetString(Canonical.Json(Encoding.UTF8.GetBytes(json)));

    [Theory]
    [InlineData("""{"b":1,"a":2}""", """{"a":2,"b":1}""")]
    [InlineData("""{ "a" : [ 1 , true , null , "x" ] }""", """{"a":[1,true,null,"x"]}""")]
    [InlineData("""{"a":1.0,"b":1e2,"c":-0}""", """{"a":1,"b":100,"c":0}""")]
    [InlineData("""{"a":9007199254740992,"b":-9007199254740992}""", """{"a":9007199254740992,"b":-9007199254740992}""")]
    [InlineData("\"\\u00e9\\u0007\\n\\/\"", "\"é\\u0007\\n/\"")]
    [InlineData("""{"\u20ac":1,"\r":2,"1":3,"\ud83d\ude00":4,"\u0080":5,"\u00f6":6,"\ufb33":7}""", "{\"\\r\":2,\"1\":3,\"\u0080\":5,\"\u00f6\":6,\"\u20ac\":1,\"\ud83d\ude00\":4,\"\ufb33\":7}")]
    public void Jcs_output_is_canonical(string input, string expected)
    {
        Assert.Equal(expected, Canon(input));
    }

    [Theory]
    [InlineData("""{"a":0.5}""")]
    [InlineData("""{"a":9007199254740993}""")]
    [InlineData("""{"a":-9007199254740993}""")]
    [InlineData("""{"a":1e400}""")]
    [InlineData("""{"a":1,"a":2}""")]
    [InlineData("""{"a":"\ud800"}""")]
    [InlineData("""{"a":1,}""")]
    public void Non_canonicalizable_json_is_rejected(string input)
    {
        Assert.Throws<StrictJsonException>(() => Canon(input));
    }

    [Fact]
    public void Objects_serialize_with_camel_case_names()
    {
        Assert.Equal("""{"name":"x","value":3}""", Encoding.UTF8.GetString(Canonical.Json(new { Value = 3, Name = "x" })));
    }
}
