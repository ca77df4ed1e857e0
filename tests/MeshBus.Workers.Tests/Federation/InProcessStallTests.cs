using System.Collections.Concurrent;
using System.Text;
using MeshBus.Federation;
using Xunit;

namespace MeshBus.Workers.Tests.Federation;

/// <summary>
/// The in-process network can stall one direction of a link, as a partition stalls a JetStream consumer: what is sent
/// meanwhile is held, the other direction keeps flowing, and recovery delivers the held messages first, in order.
/// </summary>
public sealed class InProcessStallTests
{
    private const string A = "a.example/prod";
    private const string B = "b.example/prod";

    private sealed class Inbox : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _receiving;

        public Inbox(IFederationLink link)
        {
            _receiving = link.ReceiveAsync((m, _) =>
            {
                Received.Enqueue(Encoding.UTF8.GetString(m.Data.Span));
                return Task.CompletedTask;
            }, _stop.Token);
        }

        public ConcurrentQueue<string> Received { get; } = new();

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _receiving;
            }
            catch (OperationCanceledException)
            {
            }

            _stop.Dispose();
        }
    }

    private static Task SendAsync(IFederationLink link, string to, string from, string text) =>
        link.PublishAsync(Subjects.For(to, from, "Note"), Guid.NewGuid().ToString(), Encoding.UTF8.GetBytes(text), CancellationToken.None);

    private static async Task UntilAsync(Func<bool> condition, CancellationToken bound)
    {
        while (!condition())
        {
            await Task.Delay(10, bound);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task A_stalled_direction_holds_its_messages_the_other_flows_and_recovery_delivers_them_first_in_order()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var network = new InProcessFederationNetwork();
        var (a, b) = (network.LinkFor(A), network.LinkFor(B));
        await using var atA = new Inbox(a);
        await using var atB = new Inbox(b);

        network.Stall(A, B);
        await SendAsync(a, B, A, "held-1");
        await SendAsync(a, B, A, "held-2");
        await SendAsync(b, A, B, "reply");

        // The open direction delivers; only then is the stalled one's silence meaningful.
        await UntilAsync(() => atA.Received.Contains("reply"), bound.Token);
        Assert.Empty(atB.Received);

        Assert.Equal(2, network.Recover(A, B));
        await SendAsync(a, B, A, "after");
        await UntilAsync(() => atB.Received.Count == 3, bound.Token);
        Assert.Equal(["held-1", "held-2", "after"], atB.Received);
        Assert.Equal(0, network.Recover(A, B));
    }
}
