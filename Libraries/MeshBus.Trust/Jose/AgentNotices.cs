using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;

namespace MeshBus.Trust;

/// <summary>
/// Signed denials and halts for agents: what an agent acts on must carry the domain's signature, or anyone able to put
/// a message in its queue could stop its work. The domain's grant key signs them (the key that signs what an agent
/// receives as a decision; docs/trust.md), each with its own <c>typ</c> so one is never read as the other or as a grant:
/// <list type="bullet">
/// <item><c>meshbus-denial+jwt</c>: <c>{iss, sub, intent_id, reason, lineage_index, iat}</c> — the deciding domain, the
/// agent, the intent, the <see cref="GovernanceReason"/> as an integer, the index of the recorded denial (null when the
/// denial is not recorded: bad input, an id another agent holds).</item>
/// <item><c>meshbus-halt+jwt</c>: <c>{iss, halt_id, scope, subject, intent_id, reason, iat}</c> — the ordering domain,
/// the halt's fields (<c>intent_id</c> null unless set).</item>
/// </list>
/// A verifier checks the token with the issuer's grant key and that every claim equals the message's field.
/// </summary>
public static class AgentNotices
{
    /// <summary>The JWS <c>typ</c> of a signed denial.</summary>
    public const string DenialType = "meshbus-denial+jwt";

    /// <summary>The JWS <c>typ</c> of a signed halt.</summary>
    public const string HaltType = "meshbus-halt+jwt";

    /// <summary>Returns <paramref name="denial"/> with its <see cref="GrantDenied.Token"/> signed by <paramref name="grantKey"/>.</summary>
    public static GrantDenied Sign(GrantDenied denial, ISigner grantKey, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(denial);
        CheckUsage(grantKey);
        var claims = new JsonObject
        {
            ["iss"] = denial.Domain,
            ["sub"] = denial.Agent,
            ["intent_id"] = denial.IntentId.ToString("D"),
            ["reason"] = (int)denial.Reason,
            ["lineage_index"] = denial.LineageIndex,
            ["iat"] = now.ToUnixTimeSeconds(),
        };
        return denial with { Token = CompactJws.Sign(JsonSerializer.SerializeToElement(claims), DenialType, grantKey) };
    }

    /// <summary>Returns <paramref name="halt"/> with its <see cref="HaltExecution.Token"/> signed by <paramref name="grantKey"/>.</summary>
    public static HaltExecution Sign(HaltExecution halt, ISigner grantKey, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(halt);
        CheckUsage(grantKey);
        var claims = new JsonObject
        {
            ["iss"] = halt.Domain,
            ["halt_id"] = halt.HaltId.ToString("D"),
            ["scope"] = (int)halt.Scope,
            ["subject"] = halt.Subject,
            ["intent_id"] = halt.IntentId?.ToString("D"),
            ["reason"] = (int)halt.Reason,
            ["iat"] = now.ToUnixTimeSeconds(),
        };
        return halt with { Token = CompactJws.Sign(JsonSerializer.SerializeToElement(claims), HaltType, grantKey) };
    }

    /// <summary>
    /// Verifies a denial addressed to <paramref name="agent"/>: the token's signature with <c>iss</c>'s grant key at
    /// <paramref name="now"/>, <c>iss</c> = <see cref="GrantDenied.Domain"/>, <c>sub</c> = <paramref name="agent"/> =
    /// <see cref="GrantDenied.Agent"/>, <c>intent_id</c>, <c>reason</c> and <c>lineage_index</c> equal to the message's.
    /// </summary>
    public static VerificationResult<GrantDenied> Verify(GrantDenied denial, string agent, IKeyResolver keys, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(denial);
        ArgumentNullException.ThrowIfNull(keys);
        var token = Check(denial.Token, DenialType, denial.Domain, keys, now, out var failure);
        if (token is null)
        {
            return VerificationResult<GrantDenied>.Fail(failure!.Value.Reason, failure.Value.Detail);
        }

        try
        {
            if (ClaimsJson.String(token.Value, "sub") != agent || denial.Agent != agent)
            {
                return VerificationResult<GrantDenied>.Fail(GovernanceReason.SignatureInvalid, $"the denial is for {ClaimsJson.String(token.Value, "sub")}, not {agent}");
            }

            if (ClaimsJson.Guid(token.Value, "intent_id") != denial.IntentId)
            {
                return VerificationResult<GrantDenied>.Fail(GovernanceReason.SignatureInvalid, "the denial's token names another intent");
            }

            if (ClaimsJson.Integer(token.Value, "reason") != (int)denial.Reason)
            {
                return VerificationResult<GrantDenied>.Fail(GovernanceReason.SignatureInvalid, "the denial's token states another reason");
            }

            long? index = token.Value.TryGetProperty("lineage_index", out var li) && li.ValueKind != JsonValueKind.Null ? ClaimsJson.Integer(token.Value, "lineage_index") : null;
            if (index != denial.LineageIndex)
            {
                return VerificationResult<GrantDenied>.Fail(GovernanceReason.SignatureInvalid, "the denial's token states another lineage index");
            }
        }
        catch (ClaimException e)
        {
            return VerificationResult<GrantDenied>.Fail(GovernanceReason.MalformedInput, e.Message);
        }

        return VerificationResult<GrantDenied>.Ok(denial);
    }

    /// <summary>
    /// Verifies a halt: the token's signature with <c>iss</c>'s grant key at <paramref name="now"/>, <c>iss</c> =
    /// <see cref="HaltExecution.Domain"/>, and <c>halt_id</c>, <c>scope</c>, <c>subject</c>, <c>intent_id</c>,
    /// <c>reason</c> equal to the message's.
    /// </summary>
    public static VerificationResult<HaltExecution> Verify(HaltExecution halt, IKeyResolver keys, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(halt);
        ArgumentNullException.ThrowIfNull(keys);
        var token = Check(halt.Token, HaltType, halt.Domain, keys, now, out var failure);
        if (token is null)
        {
            return VerificationResult<HaltExecution>.Fail(failure!.Value.Reason, failure.Value.Detail);
        }

        try
        {
            var t = token.Value;
            var intentId = ClaimsJson.OptionalString(t, "intent_id");
            if (ClaimsJson.Guid(t, "halt_id") != halt.HaltId
                || ClaimsJson.Integer(t, "scope") != (int)halt.Scope
                || ClaimsJson.String(t, "subject") != halt.Subject
                || ClaimsJson.Integer(t, "reason") != (int)halt.Reason
                || intentId != halt.IntentId?.ToString("D"))
            {
                return VerificationResult<HaltExecution>.Fail(GovernanceReason.SignatureInvalid, "the halt's token does not match its fields");
            }
        }
        catch (ClaimException e)
        {
            return VerificationResult<HaltExecution>.Fail(GovernanceReason.MalformedInput, e.Message);
        }

        return VerificationResult<HaltExecution>.Ok(halt);
    }

    private static JsonElement? Check(string? jws, string type, string domain, IKeyResolver keys, DateTimeOffset now, out (GovernanceReason Reason, string Detail)? failure)
    {
        failure = null;
        if (string.IsNullOrEmpty(jws))
        {
            failure = (GovernanceReason.SignatureInvalid, "unsigned: no token");
            return null;
        }

        var parsed = CompactJws.Parse(jws, type);
        if (!parsed.IsValid)
        {
            failure = (parsed.Reason, parsed.Detail);
            return null;
        }

        var token = parsed.Value!;
        string issuer;
        try
        {
            issuer = ClaimsJson.String(token.Payload, "iss");
        }
        catch (ClaimException e)
        {
            failure = (GovernanceReason.MalformedInput, e.Message);
            return null;
        }

        if (issuer != domain)
        {
            failure = (GovernanceReason.SignatureInvalid, $"the token is issued by {issuer}, the message names {domain}");
            return null;
        }

        var key = keys.Resolve(issuer, token.KeyId, KeyUsage.Grant, now);
        if (!key.Found)
        {
            failure = (key.Reason, key.Detail);
            return null;
        }

        if (!token.VerifySignature(key.PublicKey))
        {
            failure = (GovernanceReason.SignatureInvalid, "the token's signature does not verify");
            return null;
        }

        return token.Payload;
    }

    private static void CheckUsage(ISigner key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Usage != KeyUsage.Grant)
        {
            throw new ArgumentException($"denials and halts for agents are signed with a grant key, not a {key.Usage.ToWire()} key", nameof(key));
        }
    }
}
