using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace MeshBus.TestSupport;

/// <summary>
/// A loopback TCP proxy in front of a server, so a test can cut a client off (<see cref="Stop"/>: every connection
/// closed, new ones refused) and let it back (<see cref="Start"/>, same port) without stopping a shared server.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly ConcurrentBag<TcpClient> _connections = [];
    private TcpListener? _listener;
    private CancellationTokenSource? _stop;

    /// <summary>Starts forwarding to <paramref name="targetHost"/>:<paramref name="targetPort"/> on a free loopback port.</summary>
    public TcpProxy(string targetHost, int targetPort)
    {
        _targetHost = targetHost;
        _targetPort = targetPort;
        Start();
    }

    /// <summary>The proxy's port on 127.0.0.1.</summary>
    public int Port { get; private set; }

    /// <summary>Accepts connections again (on the same port after the first start).</summary>
    public void Start()
    {
        _stop = new CancellationTokenSource();
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync(_listener, _stop.Token);
    }

    /// <summary>Closes every connection and refuses new ones until <see cref="Start"/>.</summary>
    public void Stop()
    {
        _stop?.Cancel();
        _listener?.Stop();
        while (_connections.TryTake(out var c))
        {
            c.Dispose();
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Stop();
        return ValueTask.CompletedTask;
    }

    private async Task AcceptAsync(TcpListener listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(ct);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                return;
            }

            var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(_targetHost, _targetPort, ct);
            }
            catch (Exception)
            {
                client.Dispose();
                upstream.Dispose();
                continue;
            }

            _connections.Add(client);
            _connections.Add(upstream);
            _ = PumpAsync(client, upstream, ct);
            _ = PumpAsync(upstream, client, ct);
        }
    }

    private static async Task PumpAsync(TcpClient from, TcpClient to, CancellationToken ct)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream(), ct);
        }
        catch (Exception)
        {
            // a side closed, or the proxy was stopped
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }
}
