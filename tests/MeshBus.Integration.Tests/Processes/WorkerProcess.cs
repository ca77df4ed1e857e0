using System.Diagnostics;
using System.Text;
using Xunit.Abstractions;

namespace MeshBus.Integration.Tests.Processes;

/// <summary>One worker executable run by <c>dotnet</c>, its output kept for failure messages.</summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly int _healthPort;
    private int? _exitCode;

    private WorkerProcess(string name, Process process, int healthPort)
    {
        Name = name;
        _process = process;
        _healthPort = healthPort;
    }

    public string Name { get; }

    /// <summary>Where its <c>/health/*</c> and <c>/metrics</c> are served (127.0.0.1).</summary>
    public int HealthPort => _healthPort;

    /// <summary>The operating system process id (what MassTransit reports as the sender's <c>Host.ProcessId</c>).</summary>
    public int Id => _process.Id;

    public string Output
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static WorkerProcess Start(string name, string dll, IReadOnlyDictionary<string, string> environment, int healthPort)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        info.ArgumentList.Add(dll);
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info };
        var worker = new WorkerProcess(name, process, healthPort);
        process.OutputDataReceived += (_, e) => worker.Append(e.Data);
        process.ErrorDataReceived += (_, e) => worker.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>Polls <c>/health/ready</c> until it answers 200; fails with the process output otherwise.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} before it was ready:\n{Output}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{_healthPort}/health/ready"));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"{Name} was not ready within {timeout.TotalSeconds:0} s:\n{Output}");
    }

    /// <summary>
    /// SIGTERM, then up to <paramref name="grace"/> (20 s by default) for a graceful exit, then a kill. Returns the exit
    /// code of a graceful exit.
    /// </summary>
    public async Task<int?> StopAsync(ITestOutputHelper output, TimeSpan? grace = null)
    {
        var bound = grace ?? TimeSpan.FromSeconds(20);
        if (_exitCode is not null)
        {
            return _exitCode;
        }

        try
        {
            if (_process.HasExited)
            {
                _exitCode = _process.ExitCode;
                return _exitCode;
            }

            using (var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false }))
            {
                await kill!.WaitForExitAsync();
            }

            using var wait = new CancellationTokenSource(bound);
            try
            {
                await _process.WaitForExitAsync(wait.Token);
                _exitCode = _process.ExitCode;
                return _exitCode;
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                output.WriteLine($"{Name} ignored SIGTERM for {bound.TotalSeconds:0} s and was killed:\n{Output}");
                return null;
            }
        }
        catch (InvalidOperationException)
        {
            return null; // never started
        }
    }

    /// <summary>
    /// SIGKILL, the crash of a replica: no shutdown hook runs, nothing in flight is acknowledged, flushed or closed
    /// cleanly; the broker and the database see the connections drop. Returns when the process is gone.
    /// </summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
        _exitCode = _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }
}
