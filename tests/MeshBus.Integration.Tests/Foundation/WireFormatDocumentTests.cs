using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using MassTransit.Serialization;
using MeshBus.Contracts;
using Xunit;

namespace MeshBus.Integration.Tests.Foundation;

/// <summary>
/// docs/wire-format.md tells the truth: every contract has an example there, and each example reads back through
/// MassTransit's own serializer settings and writes out as the same JSON.
/// </summary>
public sealed partial class WireFormatDocumentTests
{
    private static readonly JsonSerializerOptions MassTransitJson = SystemTextJsonMessageSerializer.Options;

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MeshBus.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("MeshBus.sln not found");
    }

    [GeneratedRegex(@"<!-- example: (\w+) -->\s*```json\n(.*?)\n```", RegexOptions.Singleline)]
    private static partial Regex ExampleBlock();

    private static Dictionary<string, string> Examples() =>
        ExampleBlock().Matches(File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "wire-format.md")))
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);

    private static IEnumerable<Type> ContractRecords() =>
        typeof(IntentSubmitted).Assembly.GetExportedTypes().Where(t => t.IsClass && !(t.IsAbstract && t.IsSealed) && t.Namespace == "MeshBus.Contracts"); // messages, not the static AgentQueue rule

    [Fact]
    public void Every_contract_message_has_an_example_in_the_wire_format_document()
    {
        var examples = Examples();
        var missing = ContractRecords().Select(t => t.Name).Where(n => !examples.ContainsKey(n)).ToList();
        Assert.True(missing.Count == 0, "no example for " + string.Join(", ", missing));
    }

    [Fact]
    public void Every_example_round_trips_through_MassTransit_serializer_unchanged()
    {
        foreach (var (name, json) in Examples())
        {
            var type = typeof(IntentSubmitted).Assembly.GetType("MeshBus.Contracts." + name);
            Assert.True(type is not null, "unknown message " + name);
            var message = JsonSerializer.Deserialize(json, type, MassTransitJson);
            var written = JsonSerializer.SerializeToNode(message, type, MassTransitJson);
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), written), $"{name}: the document says\n{json}\nMassTransit writes\n{written}");
        }
    }

    [Fact]
    public void Enums_travel_as_integers_and_their_names_are_not_accepted()
    {
        var denied = new GrantDenied(Guid.NewGuid(), "acme.example/prod", "acme.example/prod/agents/a", GovernanceReason.NoMatchingRule, "no rule", null, []);
        var json = JsonSerializer.SerializeToNode(denied, MassTransitJson)!;
        Assert.Equal(JsonValueKind.Number, json["reason"]!.GetValueKind());
        Assert.Equal((int)GovernanceReason.NoMatchingRule, json["reason"]!.GetValue<int>());

        json["reason"] = "NoMatchingRule";
        Assert.Throws<JsonException>(() => json.Deserialize<GrantDenied>(MassTransitJson));
    }

    [Theory]
    [InlineData("DomainHeartbeat")]
    [InlineData("PolicySynced")]
    [InlineData("AgentQuarantined")]
    public void The_signed_examples_verify_with_the_documented_example_key(string name)
    {
        var type = typeof(IntentSubmitted).Assembly.GetType("MeshBus.Contracts." + name)!;
        var message = JsonSerializer.Deserialize(Examples()[name], type, MassTransitJson)!;
        var signature = (string?)type.GetProperty("Signature")!.GetValue(message);
        var key = new MeshBus.Trust.KeySetEntry("envelope-dd102cfea76a4e73", MeshBus.Trust.KeyUsage.Envelope, "FQ0W_LgS0EDfXq9jrRkrtFSObvGiPsTb3qKU08fMbzc",
            DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue.AddDays(-1));
        var keys = new MeshBus.Trust.KeySet("acme.example/prod", 1, DateTimeOffset.UnixEpoch, DateTimeOffset.MaxValue.AddDays(-1), [key], []);

        var result = MeshBus.Trust.GovernanceSignatures.Verify(message, signature, "acme.example/prod", MeshBus.Trust.KeyUsage.Envelope, keys, DateTimeOffset.UtcNow);

        Assert.True(result.IsValid, result.Detail);
    }
}
