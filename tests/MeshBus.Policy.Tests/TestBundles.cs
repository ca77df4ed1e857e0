using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Trust.Crypto;

namespace MeshBus.Policy.Tests;

/// <summary>Bundle documents and keys shared by the tests.</summary>
internal static class TestBundles
{
    public static readonly byte[] DomainKey = Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    public static readonly byte[] OtherKey = Convert.FromHexString("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
    public static readonly byte[] ThirdKey = Convert.FromHexString("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7");

    public static byte[] Pub(byte[] priv) => Ed25519Keys.PublicKeyOf(priv);

    public const string Simple = """
        {
          "format": "meshbus-policy/v1",
          "scope": "domain",
          "domain": "acme.example/prod",
          "epoch": 7,
          "rules": [
            {
              "id": "allow-deploy",
              "description": "deployers may deploy web services",
              "effect": "allow",
              "match": { "actions": ["deploy"], "resources": ["k8s://prod/**"] },
              "condition": "'deployers' in agent.claims.groups",
              "obligations": { "maxLeaseSeconds": 600 }
            },
            {
              "id": "deny-db",
              "effect": "deny",
              "match": { "actions": ["*"], "resources": ["k8s://prod/db/*"] }
            }
          ]
        }
        """;

    /// <summary>Edits a bundle document: <paramref name="edit"/> gets the root object.</summary>
    public static string Edit(string json, Action<JsonObject> edit)
    {
        var node = JsonNode.Parse(json)!.AsObject();
        edit(node);
        return node.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
