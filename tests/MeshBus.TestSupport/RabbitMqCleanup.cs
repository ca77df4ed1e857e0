using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace MeshBus.TestSupport;

/// <summary>Removes what a test declared on the shared broker (AMQP cannot list entities, so the test names them).</summary>
public static class RabbitMqCleanup
{
    /// <summary>Deletes each queue (with its <c>_error</c> and <c>_skipped</c> queues and same-named exchanges) and each exchange; missing ones are skipped.</summary>
    public static async Task DeleteAsync(Uri amqpUri, IEnumerable<string> queues, IEnumerable<string> exchanges)
    {
        var factory = new ConnectionFactory { Uri = amqpUri };
        await using var connection = await factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        foreach (var name in queues)
        {
            foreach (var queue in new[] { name, name + "_error", name + "_skipped" })
            {
                await channel.QueueDeleteAsync(queue, false, false);
                await channel.ExchangeDeleteAsync(queue, false);
            }
        }

        foreach (var exchange in exchanges)
        {
            await channel.ExchangeDeleteAsync(exchange, false);
        }
    }

    /// <summary>As <see cref="DeleteAsync"/>, reporting instead of throwing when the broker refuses (a clean-up never fails a test).</summary>
    public static async Task<string?> TryDeleteAsync(Uri amqpUri, IEnumerable<string> queues, IEnumerable<string> exchanges)
    {
        try
        {
            await DeleteAsync(amqpUri, queues, exchanges);
            return null;
        }
        catch (Exception e) when (e is RabbitMQClientException or OperationInterruptedException or IOException)
        {
            return e.Message;
        }
    }
}
