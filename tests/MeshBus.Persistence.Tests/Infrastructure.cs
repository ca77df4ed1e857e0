using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using MassTransit;
using MeshBus.Persistence.TestHost;
using MeshBus.TestSupport;
using Microsoft.Data.Sqlite;
using Npgsql;
using Xunit;
using Xunit.Abstractions;

namespace MeshBus.Persistence.Tests;

[CollectionDefinition("servers")]
public sealed class ServersCollection : ICollectionFixture<PostgresFixture>, ICollectionFixture<RabbitMqFixture>;

/// <summary>Fresh, empty stores: a SQLite file in a temp directory, or a new PostgreSQL database.</summary>
internal static class TestStores
{
    public static async Task<SqlStoreOptions> CreateAsync(StorageProvider provider, PostgresFixture postgres)
    {
        if (provider == StorageProvider.Postgres)
        {
            return new SqlStoreOptions { Provider = StorageProvider.Postgres, ConnectionString = await postgres.CreateDatabaseAsync("persist") };
        }

        var directory = Path.Combine(Path.GetTempPath(), "meshbus-persist-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return new SqlStoreOptions { Provider = StorageProvider.Sqlite, ConnectionString = $"Data Source={Path.Combine(directory, "store.db")}" };
    }

    public static async Task<DbConnection> OpenAsync(SqlStoreOptions store)
    {
        DbConnection connection = store.Provider == StorageProvider.Sqlite
            ? new SqliteConnection(store.ConnectionString)
            : new NpgsqlConnection(store.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>Rows of a Quartz table as strings, or empty while Quartz has not created it yet.</summary>
    public static async Task<List<string[]>> QueryAsync(SqlStoreOptions store, string sql)
    {
        await using var connection = await OpenAsync(store);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var rows = new List<string[]>();
        try
        {
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var row = new string[reader.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = Convert.ToString(reader.GetValue(i)) ?? "";
                }

                rows.Add(row);
            }
        }
        catch (DbException e) when (e.Message.Contains("does not exist", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("no such table", StringComparison.OrdinalIgnoreCase))
        {
        }

        return rows;
    }

    /// <summary>The schedule tokens (N format) Quartz holds in a job group.</summary>
    public static async Task<HashSet<string>> JobsAsync(SqlStoreOptions store, string group) =>
        (await QueryAsync(store, $"SELECT job_name FROM qrtz_job_details WHERE job_group = '{group}'")).Select(r => r[0]).ToHashSet();
}

/// <summary>Polls a condition without sleeping longer than needed.</summary>
internal static class Eventually
{
    public static async Task<T> GetAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var value = await probe();
            if (done(value))
            {
                return value;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {what}; last value: {value}");
            }

            await Task.Delay(25);
        }
    }
}

/// <summary>
/// A bus in the test process that sends scheduling commands and records when each <see cref="Ping"/> arrives.
/// </summary>
internal sealed class PingListener : IAsyncDisposable
{
    private readonly IBusControl _bus;

    private PingListener(IBusControl bus, string queue)
    {
        _bus = bus;
        Queue = queue;
    }

    public string Queue { get; }

    public Uri Address => new($"queue:{Queue}");

    public ConcurrentQueue<(Guid PingId, DateTime ArrivedAt)> Arrivals { get; } = new();

    public IBus Bus => _bus;

    public static async Task<PingListener> StartAsync(Uri rabbitMq, string queue)
    {
        PingListener? listener = null;
        var bus = MassTransit.Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(rabbitMq);
            cfg.ReceiveEndpoint(queue, e => e.Handler<Ping>(context =>
            {
                listener!.Arrivals.Enqueue((context.Message.PingId, DateTime.UtcNow));
                return Task.CompletedTask;
            }));
        });
        listener = new PingListener(bus, queue);
        await bus.StartAsync();
        return listener;
    }

    public int CountOf(Guid pingId) => Arrivals.Count(a => a.PingId == pingId);

    public IMessageScheduler Scheduler(string schedulerQueue) => _bus.CreateMessageScheduler(new Uri($"queue:{schedulerQueue}"));

    public async ValueTask DisposeAsync() => await _bus.StopAsync();
}

/// <summary>A <c>MeshBus.Persistence.TestHost</c> process; <see cref="Kill"/> is a kill -9 of its whole tree.</summary>
internal sealed class TestHostProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentQueue<string> _output = new();

    private TestHostProcess(Process process) => _process = process;

    public string Name { get; private init; } = "";

    public static async Task<TestHostProcess> StartAsync(string name, ITestOutputHelper output, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(HostDll());
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var host = new TestHostProcess(process) { Name = name };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            host._output.Enqueue(e.Data);
            if (e.Data.Trim() == "READY")
            {
                host._ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                host._output.Enqueue("err: " + e.Data);
            }
        };
        process.Exited += (_, _) => host._ready.TrySetException(new InvalidOperationException($"{name} exited before it was ready:\n{string.Join('\n', host._output)}"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await host._ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch
        {
            host.Dispose();
            throw;
        }

        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {name} ready (pid {process.Id})");
        return host;
    }

    public string Output => string.Join('\n', _output);

    /// <summary>SIGKILL, no shutdown hooks: the process gets no chance to finish anything.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.WaitForExit(10_000);
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private static string HostDll()
    {
        const string Dll = "MeshBus.Persistence.TestHost.dll";
        var baseDirectory = AppContext.BaseDirectory;
        var candidates = new[]
        {
            Path.Combine(baseDirectory.Replace("MeshBus.Persistence.Tests", "MeshBus.Persistence.TestHost", StringComparison.Ordinal), Dll),
            Path.Combine(baseDirectory, Dll),
        };
        return candidates.FirstOrDefault(c => File.Exists(c) && File.Exists(Path.ChangeExtension(c, ".runtimeconfig.json")))
            ?? throw new FileNotFoundException($"{Dll} with its runtimeconfig not found; looked at: {string.Join(", ", candidates)}");
    }
}
