using System.Text.RegularExpressions;
using MeshBus.Persistence;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace MeshBus.Hosting;

/// <summary>Validates on start and names the setting (and its environment variable) that is missing or wrong.</summary>
internal sealed class MeshBusOptionsValidator : IValidateOptions<MeshBusOptions>
{
    public ValidateOptionsResult Validate(string? name, MeshBusOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Domain))
        {
            errors.Add("MeshBus:Domain is required (environment variable MeshBus__Domain), e.g. acme.example/prod");
        }
        else if (options.Domain.Contains("://", StringComparison.Ordinal) || options.Domain.Any(char.IsWhiteSpace))
        {
            errors.Add($"MeshBus:Domain '{options.Domain}' must be a schema-less name like acme.example/prod");
        }

        if (options.ImmediateRetries is < 0 or > 20)
        {
            errors.Add("MeshBus:ImmediateRetries must be between 0 and 20");
        }

        if (options.RedeliveryIntervals.Any(s => s <= 0))
        {
            errors.Add("MeshBus:RedeliverySeconds must be positive");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class RabbitMqOptionsValidator(IConfiguration configuration) : IValidateOptions<RabbitMqTransportOptions>
{
    public ValidateOptionsResult Validate(string? name, RabbitMqTransportOptions options)
    {
        if (configuration.GetSection(MeshBusOptions.Section).GetValue(nameof(MeshBusOptions.Transport), TransportKind.InMemory) != TransportKind.RabbitMq)
        {
            return ValidateOptionsResult.Success;
        }

        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Host))
        {
            errors.Add("RabbitMqTransport:Host is required with MeshBus:Transport=RabbitMq (environment variable RabbitMqTransport__Host)");
        }

        if (string.IsNullOrWhiteSpace(options.Username))
        {
            errors.Add("RabbitMqTransport:Username is required with MeshBus:Transport=RabbitMq (environment variable RabbitMqTransport__Username)");
        }

        if (string.IsNullOrEmpty(options.Password))
        {
            errors.Add("RabbitMqTransport:Password is required with MeshBus:Transport=RabbitMq (environment variable RabbitMqTransport__Password)");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var errors = new List<string>();
        if (options.Provider == StorageProvider.Postgres && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            errors.Add("Storage:ConnectionString is required with Storage:Provider=Postgres (environment variable Storage__ConnectionString)");
        }

        else if (options.Provider == StorageProvider.Postgres && !ParsesAsConnectionString(options.ConnectionString!, out var problem))
        {
            errors.Add($"Storage:ConnectionString is not a PostgreSQL connection string ({problem}) (environment variable Storage__ConnectionString)");
        }

        if (options.PoolSize < 1)
        {
            // Npgsql's default of 100 per pool would let two replicas at full concurrency exhaust a default server's
            // max_connections; zero would open none.
            errors.Add($"Storage:PoolSize must be at least 1, got {options.PoolSize} (environment variable Storage__PoolSize)");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static bool ParsesAsConnectionString(string connectionString, out string problem)
    {
        try
        {
            _ = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
            problem = "";
            return true;
        }
        catch (ArgumentException e)
        {
            // The message names the keyword, never the value (which may hold the password).
            problem = e.Message;
            return false;
        }
    }
}

internal sealed class HealthOptionsValidator : IValidateOptions<HealthOptions>
{
    public ValidateOptionsResult Validate(string? name, HealthOptions options)
    {
        if (options.ErrorQueueInterval <= TimeSpan.Zero)
        {
            return ValidateOptionsResult.Fail("Health:ErrorQueueInterval must be a positive duration like 00:00:30 (environment variable Health__ErrorQueueInterval)");
        }

        if (string.IsNullOrWhiteSpace(options.Urls))
        {
            return ValidateOptionsResult.Success;
        }

        var wrong = options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(u => !Uri.TryCreate(u.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri)
                || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
            .ToList();
        return wrong.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Health:Urls '{string.Join(';', wrong)}' is not an http(s) URL like http://0.0.0.0:8080 (environment variable Health__Urls)");
    }
}

/// <summary>Turns the configuration binder's conversion failures into a line that names the setting and its variable.</summary>
public static partial class SettingErrors
{
    /// <summary>
    /// The failures in <paramref name="exception"/> (an options validation failure, or a value the binder could not
    /// convert), each naming the setting and its environment variable; empty when it is neither.
    /// </summary>
    public static IReadOnlyList<string> Describe(Exception exception)
    {
        var failures = new List<string>();
        Collect(exception, failures);
        return failures.Distinct().ToList();
    }

    private static void Collect(Exception? e, List<string> failures)
    {
        switch (e)
        {
            case null:
                return;
            case OptionsValidationException v:
                failures.AddRange(v.Failures);
                return;
            case AggregateException a:
                foreach (var inner in a.InnerExceptions)
                {
                    Collect(inner, failures);
                }

                return;
            case InvalidOperationException when BinderFailure().Match(e.Message) is { Success: true } m:
                failures.Add(Conversion(m.Groups["path"].Value, m.Groups["type"].Value));
                return;
            default:
                Collect(e.InnerException, failures);
                return;
        }
    }

    private static string Conversion(string path, string typeName)
    {
        var variable = path.Replace(":", "__", StringComparison.Ordinal);
        var type = Type.GetType(typeName) ?? AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(typeName)).FirstOrDefault(t => t is not null);
        var expected = type is { IsEnum: true }
            ? "one of " + string.Join(", ", Enum.GetNames(type))
            : typeName switch
            {
                "System.TimeSpan" => "a duration like 00:00:30",
                "System.UInt16" => "a whole number from 0 to 65535",
                "System.Int32" or "System.Int64" => "a whole number",
                "System.Double" => "a number",
                "System.Boolean" => "true or false",
                _ => "a value of type " + typeName,
            };
        return $"{path} (environment variable {variable}) must be {expected}";
    }

    // Microsoft.Extensions.Configuration.Binder: "Failed to convert configuration value '...' at 'A:B' to type 'T'."
    [GeneratedRegex(@"at '(?<path>[^']+)' to type '(?<type>[^']+)'")]
    private static partial Regex BinderFailure();
}
