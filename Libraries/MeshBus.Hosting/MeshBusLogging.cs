using System.Reflection;
using MeshBus.Persistence;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Npgsql;

namespace MeshBus.Hosting;

/// <summary>
/// The console log of a worker: one line per entry (<c>HH:mm:ss.fff level category: message</c>) with an exception's
/// stack trace on the lines below it instead of folded into one very long line; or, when the operator names a
/// formatter (<c>Logging__Console__FormatterName=json</c>), that formatter.
/// </summary>
internal sealed class MeshBusConsoleFormatter() : ConsoleFormatter(Name)
{
    public new const string Name = "meshbus";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
        {
            return;
        }

        var level = logEntry.LogLevel switch
        {
            LogLevel.Trace => "trce",
            LogLevel.Debug => "dbug",
            LogLevel.Information => "info",
            LogLevel.Warning => "warn",
            LogLevel.Error => "fail",
            LogLevel.Critical => "crit",
            _ => "none",
        };
        textWriter.Write(DateTime.UtcNow.ToString("HH:mm:ss.fff ", System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(level);
        textWriter.Write(": ");
        textWriter.Write(logEntry.Category);
        textWriter.Write(": ");
        textWriter.WriteLine(message.ReplaceLineEndings(" "));
        if (logEntry.Exception is { } e)
        {
            textWriter.WriteLine(e.ToString());
        }
    }
}

/// <summary>Logs one line at start: what this process is and where it connects (never a password).</summary>
internal sealed class StartLine(
    IHostEnvironment environment,
    IOptions<MeshBusOptions> mesh,
    IOptions<RabbitMqTransportOptions> rabbit,
    IOptions<StorageOptions> storage,
    ILogger<StartLine> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var m = mesh.Value;
        var version = typeof(StartLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        var transport = m.Transport == TransportKind.RabbitMq
            ? $"RabbitMq amqp://{rabbit.Value.Host}:{rabbit.Value.Port}{rabbit.Value.VirtualHost} as {rabbit.Value.Username}"
            : "InMemory";
        logger.LogInformation(
            "MeshBus {Application} {Version} domain {Domain}, transport {Transport}, storage {Storage}, keys {KeyDirectory}",
            environment.ApplicationName, version, m.Domain, transport, Describe(storage.Value, m), Path.GetFullPath(m.ResolvedKeyDirectory));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    internal static string Describe(StorageOptions storage, MeshBusOptions mesh)
    {
        if (storage.Provider != StorageProvider.Postgres)
        {
            return "SQLite in " + Path.GetFullPath(mesh.DataDirectory);
        }

        try
        {
            var b = new NpgsqlConnectionStringBuilder(storage.ConnectionString);
            return $"PostgreSQL {b.Host}:{b.Port}/{b.Database} as {b.Username}";
        }
        catch (ArgumentException)
        {
            return "PostgreSQL (connection string not readable)";
        }
    }
}

/// <summary>Console logging set-up shared by every worker.</summary>
internal static class MeshBusLogging
{
    public static void Configure(ILoggingBuilder logging, IConfiguration configuration)
    {
        logging.AddConsoleFormatter<MeshBusConsoleFormatter, ConsoleFormatterOptions>();
        // The operator's choice (simple, systemd, json) wins; otherwise MeshBus's own readable format.
        if (string.IsNullOrWhiteSpace(configuration["Logging:Console:FormatterName"]))
        {
            logging.Services.Configure<ConsoleLoggerOptions>(o => o.FormatterName = MeshBusConsoleFormatter.Name);
        }
    }
}
