using System.Text.Json;
using System.Text.Json.Nodes;
using MeshBus.Contracts;
using MeshBus.Trust.Crypto;

namespace MeshBus.Trust;

/// <summary>
/// Proof of possession for execution reports, the same as for intents: the agent key signs the RFC 8785 canonical
/// JSON of the report's fields. The signed object is the report without <c>signature</c> and <c>messageVersion</c>,
/// plus <c>"type"</c> (the message name, so a signed heartbeat is never read as a completion); UUIDs are lowercase
/// hyphenated, times are integers of milliseconds since the Unix epoch, enums are integers, absent optional fields are
/// <c>null</c>. For <see cref="ExecutionStarted"/>:
/// <c>{"agent","domain","grantId","intentId","startedAt","type":"ExecutionStarted"}</c>; for the others see
/// docs/wire-format.md. The mesh checks the signature with the <c>cnf</c> key of the grant issued for the intent.
/// </summary>
public static class ExecutionReportSignature
{
    /// <summary>The report types this signature covers (the agent-published execution reports).</summary>
    public static IReadOnlyList<Type> ReportTypes { get; } = [typeof(ExecutionStarted), typeof(ExecutionHeartbeat), typeof(ExecutionCompleted), typeof(ExecutionHalted)];

    /// <summary>The canonical signed bytes of a report.</summary>
    /// <exception cref="ArgumentException">Not an execution report.</exception>
    public static byte[] SignedBytes(object report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var o = report switch
        {
            ExecutionStarted m => new JsonObject
            {
                ["type"] = nameof(ExecutionStarted),
                ["intentId"] = m.IntentId.ToString("D"),
                ["domain"] = m.Domain,
                ["agent"] = m.Agent,
                ["grantId"] = m.GrantId,
                ["startedAt"] = m.StartedAt.ToUnixTimeMilliseconds(),
            },
            ExecutionHeartbeat m => new JsonObject
            {
                ["type"] = nameof(ExecutionHeartbeat),
                ["intentId"] = m.IntentId.ToString("D"),
                ["domain"] = m.Domain,
                ["agent"] = m.Agent,
                ["sequence"] = m.Sequence,
                ["sentAt"] = m.SentAt.ToUnixTimeMilliseconds(),
            },
            ExecutionCompleted m => new JsonObject
            {
                ["type"] = nameof(ExecutionCompleted),
                ["intentId"] = m.IntentId.ToString("D"),
                ["domain"] = m.Domain,
                ["agent"] = m.Agent,
                ["completedAt"] = m.CompletedAt.ToUnixTimeMilliseconds(),
                ["outcome"] = m.Outcome,
            },
            ExecutionHalted m => new JsonObject
            {
                ["type"] = nameof(ExecutionHalted),
                ["intentId"] = m.IntentId.ToString("D"),
                ["domain"] = m.Domain,
                ["agent"] = m.Agent,
                ["reason"] = (int)m.Reason,
                ["detail"] = m.Detail,
                ["haltedAt"] = m.HaltedAt.ToUnixTimeMilliseconds(),
                ["haltId"] = m.HaltId?.ToString("D"),
            },
            _ => throw new ArgumentException($"{report.GetType().Name} is not an execution report", nameof(report)),
        };
        return Canonical.Json(JsonSerializer.SerializeToElement(o));
    }

    /// <summary>Signs a started report; its time is truncated to whole milliseconds (the signed precision).</summary>
    public static ExecutionStarted Sign(ExecutionStarted report, ReadOnlySpan<byte> agentPrivateKey)
    {
        ArgumentNullException.ThrowIfNull(report);
        var m = report with { StartedAt = Ms(report.StartedAt), Signature = null };
        return m with { Signature = SignBytes(m, agentPrivateKey) };
    }

    /// <summary>Signs a heartbeat; its time is truncated to whole milliseconds.</summary>
    public static ExecutionHeartbeat Sign(ExecutionHeartbeat report, ReadOnlySpan<byte> agentPrivateKey)
    {
        ArgumentNullException.ThrowIfNull(report);
        var m = report with { SentAt = Ms(report.SentAt), Signature = null };
        return m with { Signature = SignBytes(m, agentPrivateKey) };
    }

    /// <summary>Signs a completion; its time is truncated to whole milliseconds.</summary>
    public static ExecutionCompleted Sign(ExecutionCompleted report, ReadOnlySpan<byte> agentPrivateKey)
    {
        ArgumentNullException.ThrowIfNull(report);
        var m = report with { CompletedAt = Ms(report.CompletedAt), Signature = null };
        return m with { Signature = SignBytes(m, agentPrivateKey) };
    }

    /// <summary>Signs a halt acknowledgement; its time is truncated to whole milliseconds.</summary>
    public static ExecutionHalted Sign(ExecutionHalted report, ReadOnlySpan<byte> agentPrivateKey)
    {
        ArgumentNullException.ThrowIfNull(report);
        var m = report with { HaltedAt = Ms(report.HaltedAt), Signature = null };
        return m with { Signature = SignBytes(m, agentPrivateKey) };
    }

    /// <summary>The report's <c>signature</c> field, or null for a type that is not a report.</summary>
    public static string? SignatureOf(object report) => report switch
    {
        ExecutionStarted m => m.Signature,
        ExecutionHeartbeat m => m.Signature,
        ExecutionCompleted m => m.Signature,
        ExecutionHalted m => m.Signature,
        _ => null,
    };

    /// <summary>
    /// Verifies a report's signature with the agent's raw public key. False when the signature is absent, not base64url,
    /// does not verify, or a time is finer than milliseconds (the signed precision).
    /// </summary>
    public static bool Verify(object report, ReadOnlySpan<byte> agentPublicKey)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (SignatureOf(report) is not { Length: > 0 } text || !Base64Url.TryDecode(text, out var signature))
        {
            return false;
        }

        var time = report switch
        {
            ExecutionStarted m => m.StartedAt,
            ExecutionHeartbeat m => m.SentAt,
            ExecutionCompleted m => m.CompletedAt,
            ExecutionHalted m => m.HaltedAt,
            _ => default,
        };
        return time.UtcTicks % TimeSpan.TicksPerMillisecond == 0 && Ed25519Keys.Verify(agentPublicKey, SignedBytes(report), signature);
    }

    private static string SignBytes(object report, ReadOnlySpan<byte> agentPrivateKey) => Base64Url.Encode(Ed25519Keys.Sign(agentPrivateKey, SignedBytes(report)));

    private static DateTimeOffset Ms(DateTimeOffset t) => DateTimeOffset.FromUnixTimeMilliseconds(t.ToUnixTimeMilliseconds());
}
