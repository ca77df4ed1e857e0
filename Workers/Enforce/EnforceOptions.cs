using Microsoft.Extensions.Options;

namespace MeshBus.Workers.Enforce;

/// <summary>The <c>Enforce</c> section: the lifecycle saga's deadlines.</summary>
public sealed class EnforceOptions
{
    /// <summary>The section name.</summary>
    public const string Section = "Enforce";

    /// <summary>How long a submitted intent may wait for a decision before its saga gives up (ends <c>Expired</c>).</summary>
    public TimeSpan DecisionTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>An executing agent that sends no heartbeat for this long is halted (<c>HeartbeatLost</c>).</summary>
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>How long an agent has to report <c>ExecutionHalted</c> after a halt before it is quarantined.</summary>
    public TimeSpan HaltAcknowledgementTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Slack after the lease's <c>exp</c> before the saga records the execution as expired.</summary>
    public TimeSpan LeaseGrace { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A heartbeat asks for a renewal once less than this fraction of the lease remains.</summary>
    public double RenewalFraction { get; set; } = 0.5;

    /// <summary>
    /// How many halt-acknowledgement deadlines a halting execution with no known lease may miss before its saga ends
    /// <c>Expired</c> instead of repeating the halt (with a known lease, the lease's expiry ends it).
    /// </summary>
    public int MaxHaltRepeats { get; set; } = 10;

    /// <summary>
    /// How long a finished intent lifecycle (Completed, Halted, Expired, Denied) stays in the saga store after its last
    /// change before it is deleted; its record stays in lineage. At least one hour, so that every redelivery and late
    /// report of it has arrived long before.
    /// </summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How often the finished lifecycles past <see cref="Retention"/> are deleted.</summary>
    public TimeSpan RetentionSweepInterval { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>Checks the <c>Enforce</c> section on start, naming the setting and its environment variable.</summary>
internal sealed class EnforceOptionsValidator : IValidateOptions<EnforceOptions>
{
    public ValidateOptionsResult Validate(string? name, EnforceOptions options)
    {
        var errors = new List<string>();
        void Positive(TimeSpan value, string setting)
        {
            if (value <= TimeSpan.Zero)
            {
                errors.Add($"Enforce:{setting} must be a positive duration like 00:00:30 (environment variable Enforce__{setting})");
            }
        }

        Positive(options.DecisionTimeout, nameof(EnforceOptions.DecisionTimeout));
        Positive(options.HeartbeatTimeout, nameof(EnforceOptions.HeartbeatTimeout));
        Positive(options.HaltAcknowledgementTimeout, nameof(EnforceOptions.HaltAcknowledgementTimeout));
        if (options.LeaseGrace < TimeSpan.Zero)
        {
            errors.Add("Enforce:LeaseGrace must not be negative (environment variable Enforce__LeaseGrace)");
        }

        if (options.RenewalFraction is <= 0 or >= 1)
        {
            errors.Add("Enforce:RenewalFraction must be between 0 and 1, e.g. 0.5 (environment variable Enforce__RenewalFraction)");
        }

        if (options.Retention < TimeSpan.FromHours(1))
        {
            errors.Add("Enforce:Retention must be at least 01:00:00, e.g. 7.00:00:00 (environment variable Enforce__Retention)");
        }

        Positive(options.RetentionSweepInterval, nameof(EnforceOptions.RetentionSweepInterval));
        if (options.MaxHaltRepeats < 1)
        {
            errors.Add("Enforce:MaxHaltRepeats must be at least 1 (environment variable Enforce__MaxHaltRepeats)");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
