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

        if (options.PoolSize < 1)
        {
            // Npgsql's default of 100 per pool would let two replicas at full concurrency exhaust a default server's
            // max_connections; zero would open none.
            errors.Add($"Storage:PoolSize must be at least 1, got {options.PoolSize} (environment variable Storage__PoolSize)");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
