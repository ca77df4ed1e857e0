using MeshBus.Policy.Cel;

namespace MeshBus.Policy.Evaluation;

/// <summary>The CEL declarations of the condition input (docs/policy.md, "Input schema"); conditions are type-checked against them.</summary>
public static class PolicyInputSchema
{
    /// <summary>Type of <c>intent</c>.</summary>
    public static readonly CelType Intent = CelType.Object("meshbus.policy.Intent", new Dictionary<string, CelType>
    {
        ["id"] = CelType.String,
        ["action"] = CelType.String,
        ["resource"] = CelType.String,
        ["parameters"] = CelType.Map(CelType.String, CelType.Dyn),
        ["maxDurationSeconds"] = CelType.Int,
        ["targetDomain"] = CelType.String,
        ["issuedAt"] = CelType.Timestamp,
    });

    /// <summary>
    /// Type of <c>agent.claims</c>: exactly the attested claims a credential from <c>meshbus agent issue</c> carries
    /// (docs/trust.md), so a condition naming any other claim (<c>agent.claims.image_digest</c>) is refused when the
    /// bundle loads instead of failing every decision at run time. <c>runtime</c> and <c>owner</c> are optional
    /// (test them with <c>has(...)</c>).
    /// </summary>
    public static readonly CelType AgentClaims = CelType.Object("meshbus.policy.AgentClaims", new Dictionary<string, CelType>
    {
        ["image_digest"] = CelType.String,
        ["runtime"] = CelType.String,
        ["owner"] = CelType.String,
        ["groups"] = CelType.List(CelType.String),
    });

    /// <summary>Type of <c>agent</c>.</summary>
    public static readonly CelType Agent = CelType.Object("meshbus.policy.Agent", new Dictionary<string, CelType>
    {
        ["subject"] = CelType.String,
        ["domain"] = CelType.String,
        ["claims"] = AgentClaims,
    });

    /// <summary>Type of <c>origin</c>.</summary>
    public static readonly CelType Origin = CelType.Object("meshbus.policy.Origin", new Dictionary<string, CelType>
    {
        ["domain"] = CelType.String,
        ["attributes"] = CelType.Map(CelType.String, CelType.Dyn),
    });

    /// <summary>Type of <c>target</c>.</summary>
    public static readonly CelType Target = CelType.Object("meshbus.policy.Target", new Dictionary<string, CelType>
    {
        ["domain"] = CelType.String,
    });

    /// <summary>Every variable a condition may use.</summary>
    public static readonly IReadOnlyDictionary<string, CelType> Variables = new Dictionary<string, CelType>(StringComparer.Ordinal)
    {
        ["intent"] = Intent,
        ["agent"] = Agent,
        ["origin"] = Origin,
        ["target"] = Target,
        ["now"] = CelType.Timestamp,
    };
}
