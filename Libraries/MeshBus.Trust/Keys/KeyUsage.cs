namespace MeshBus.Trust;

/// <summary>What a working key may sign. A key of one usage never verifies an artifact of another.</summary>
public enum KeyUsage
{
    /// <summary>Grants, renewals and endorsements (JWS <c>meshbus-grant+jwt</c>), and the domain's own domain and egress policy bundles.</summary>
    Grant = 0,

    /// <summary>Agent credentials (JWS <c>meshbus-credential+jwt</c>).</summary>
    Credential = 1,

    /// <summary>Federation bridge envelopes.</summary>
    Envelope = 2,

    /// <summary>Lineage log checkpoints (C2SP signed notes, type 0x01).</summary>
    Log = 3,

    /// <summary>Cosignatures of peers' checkpoints (C2SP tlog-cosignature, type 0x04).</summary>
    Witness = 4,
}

/// <summary>The lowercase wire names of <see cref="KeyUsage"/> (<c>grant</c>, <c>credential</c>, ...).</summary>
public static class KeyUsages
{
    /// <summary>Every usage, in declaration order.</summary>
    public static IReadOnlyList<KeyUsage> All { get; } = [KeyUsage.Grant, KeyUsage.Credential, KeyUsage.Envelope, KeyUsage.Log, KeyUsage.Witness];

    /// <summary>The wire name of a usage.</summary>
    public static string ToWire(this KeyUsage usage) => usage switch
    {
        KeyUsage.Grant => "grant",
        KeyUsage.Credential => "credential",
        KeyUsage.Envelope => "envelope",
        KeyUsage.Log => "log",
        KeyUsage.Witness => "witness",
        _ => throw new ArgumentOutOfRangeException(nameof(usage), usage, "unknown key usage"),
    };

    /// <summary>Parses a wire name; throws <see cref="FormatException"/> for anything else.</summary>
    public static KeyUsage Parse(string text) => TryParse(text, out var u) ? u : throw new FormatException($"unknown key usage '{text}' (expected grant, credential, envelope, log or witness)");

    /// <summary>Parses a wire name (exact, lowercase).</summary>
    public static bool TryParse(string? text, out KeyUsage usage)
    {
        switch (text)
        {
            case "grant": usage = KeyUsage.Grant; return true;
            case "credential": usage = KeyUsage.Credential; return true;
            case "envelope": usage = KeyUsage.Envelope; return true;
            case "log": usage = KeyUsage.Log; return true;
            case "witness": usage = KeyUsage.Witness; return true;
            default: usage = default; return false;
        }
    }
}
