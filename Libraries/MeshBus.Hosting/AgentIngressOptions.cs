using Microsoft.Extensions.Options;

namespace MeshBus.Hosting;

/// <summary>
/// The <c>AgentIngress</c> section: the limits of what an agent may put on the bus (environment
/// <c>AgentIngress__MaxIntentBytes</c>, ...). Input over a limit is rejected as malformed input at the ingress, before
/// any signature is checked or anything is stored (docs/wire-format.md, "Limits").
/// </summary>
public sealed class AgentIngressOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "AgentIngress";

    /// <summary>The largest intent message body, in bytes (envelope included). Default 64 KiB.</summary>
    public int MaxIntentBytes { get; set; } = 64 * 1024;

    /// <summary>The largest execution report body, in bytes (envelope included). Default 8 KiB.</summary>
    public int MaxReportBytes { get; set; } = 8 * 1024;

    /// <summary>The most values (members and array items, at every depth) an intent's parameters may hold. Default 256.</summary>
    public int MaxParameterCount { get; set; } = 256;

    /// <summary>How deep an intent's parameters may nest (the parameters object itself is depth 1). Default 8.</summary>
    public int MaxParameterDepth { get; set; } = 8;

    /// <summary>The longest string (a field, a parameter name or value), in characters. Default 4096.</summary>
    public int MaxStringLength { get; set; } = 4096;

    /// <summary>The longest credential (a JWS), in characters. Default 16384.</summary>
    public int MaxCredentialLength { get; set; } = 16 * 1024;
}

internal sealed class AgentIngressOptionsValidator : IValidateOptions<AgentIngressOptions>
{
    public ValidateOptionsResult Validate(string? name, AgentIngressOptions options)
    {
        var errors = new List<string>();
        foreach (var (setting, value) in new[]
        {
            (nameof(options.MaxIntentBytes), options.MaxIntentBytes), (nameof(options.MaxReportBytes), options.MaxReportBytes),
            (nameof(options.MaxParameterCount), options.MaxParameterCount), (nameof(options.MaxParameterDepth), options.MaxParameterDepth),
            (nameof(options.MaxStringLength), options.MaxStringLength), (nameof(options.MaxCredentialLength), options.MaxCredentialLength),
        })
        {
            if (value <= 0)
            {
                errors.Add($"AgentIngress:{setting} must be positive (environment variable AgentIngress__{setting})");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
