using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Threading.Channels;

namespace MeshBus.Load;

/// <summary>
/// A process the load tool started (a responder or a real worker executable). It keeps the process's last output lines for
/// error messages and, for the tool's own responders, speaks their line protocol on standard input/output
/// (<c>ready</c>, <c>stats</c> → <c>stats BYTES</c>, <c>stop</c>). Stopping sends SIGTERM (graceful), then kills after a bound.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly Queue<string> _tail = new();
    private readonly SemaphoreSlim _statsLock = new(1, 1);

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>The name the tables use.</summary>
    public string Name { get; }

    /// <summary>The process id.</summary>
    public int Pid => _process.Id;

    /// <summary>The last lines it wrote (standard output and error), for failure messages.</summary>
    public string Tail
    {
        get
        {
            lock (_tail)
            {
                return string.Join('\n', _tail);
            }
        }
    }

    /// <summary>Starts <c>dotnet DLL ARGS</c> with <paramref name="environment"/> added to this process's environment.</summary>
    public static ChildProcess Start(string name, string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment)
    {
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{name}: executable not built: {dll} (run bench/run-load.sh, which builds it)", dll);
        }

        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{name}: could not start {dll}");
        var child = new ChildProcess(name, process);
        process.OutputDataReceived += (_, e) => child.Received(e.Data, true);
        process.ErrorDataReceived += (_, e) => child.Received(e.Data, false);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Waits for a line equal to <paramref name="line"/> on standard output, within <paramref name="bound"/>.</summary>
    public async Task WaitLineAsync(string line, TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            while (await _lines.Reader.ReadAsync(timeout.Token) != line)
            {
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            throw new TimeoutException($"{Name} (pid {Pid}) did not say '{line}' within {bound.TotalSeconds:0} s; its output:\n{Tail}");
        }
    }

    /// <summary>Bytes the process allocated since it started (the tool's responders: <c>stats</c> on standard input).</summary>
    public async Task<long?> AllocatedBytesAsync()
    {
        await _statsLock.WaitAsync();
        try
        {
            await _process.StandardInput.WriteLineAsync("stats");
            await _process.StandardInput.FlushAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (true)
            {
                var line = await _lines.Reader.ReadAsync(timeout.Token);
                if (line.StartsWith("stats ", StringComparison.Ordinal))
                {
                    return long.Parse(line["stats ".Length..], CultureInfo.InvariantCulture);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        finally
        {
            _statsLock.Release();
        }
    }

    /// <summary>Asks it to stop (SIGTERM, and "stop" on standard input), waits up to 20 s, then kills it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                await _process.StandardInput.WriteLineAsync("stop");
                await _process.StandardInput.FlushAsync();
            }
            catch (IOException)
            {
                // its input is already closed
            }

            _ = Kill(_process.Id, 15);
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(bound.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }

        _process.Dispose();
        _statsLock.Dispose();
    }

    private void Received(string? line, bool standardOutput)
    {
        if (line is null)
        {
            if (standardOutput)
            {
                _lines.Writer.TryComplete();
            }

            return;
        }

        lock (_tail)
        {
            _tail.Enqueue(line);
            if (_tail.Count > 40)
            {
                _tail.Dequeue();
            }
        }

        if (standardOutput)
        {
            _lines.Writer.TryWrite(line);
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
