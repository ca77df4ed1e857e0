using System.Text;
using System.Text.Json.Nodes;
using MeshBus.TestSupport;
using RabbitMQ.Client;
using Xunit;

namespace MeshBus.Integration.Tests.Foundation;

/// <summary>
/// A publisher that is not .NET (RabbitMQ.Client only, bytes built by hand as docs/wire-format.md describes) reaches a
/// consumer hosted with AddMeshBus; input that cannot be a message lands in the endpoint's error queue with the reason
/// in its headers, the worker keeps consuming, and nothing else is lost.
/// </summary>
[Collection("rabbitmq")]
[Trait("Category", "Integration")]
public sealed class RawPublisherTests(RabbitMqFixture rabbit)
{
    private const string EnvelopeContentType = "application/vnd.masstransit+json";
    private const string IntentUrn = "urn:message:MeshBus.Contracts:IntentSubmitted";

    private static JsonObject IntentJson(Guid id, string action = "deploy") => new()
    {
        ["intentId"] = id.ToString(),
        ["domain"] = "acme.example/prod",
        ["agent"] = "acme.example/prod/agents/deployer",
        ["targetDomain"] = "acme.example/prod",
        ["action"] = action,
        ["resource"] = "k8s://cluster-a/ns/web",
        ["parameters"] = new JsonObject { ["replicas"] = 3, ["image"] = "registry.example/web@sha256:ab" },
        ["maxDurationSeconds"] = 600,
        ["nonce"] = "n-0f8e",
        ["issuedAt"] = "2026-11-26T12:00:00+00:00",
        ["credential"] = "eyJ0eXAiOiJtZXNoYnVzLWNyZWRlbnRpYWwrand0In0.e30.sig",
        ["signature"] = "c2lnbmF0dXJl",
        ["messageVersion"] = 1,
    };

    private static byte[] Envelope(JsonObject message) => Encoding.UTF8.GetBytes(new JsonObject
    {
        ["messageId"] = Guid.NewGuid().ToString(),
        ["messageType"] = new JsonArray(IntentUrn),
        ["sentTime"] = DateTimeOffset.UtcNow.ToString("O"),
        ["headers"] = new JsonObject(),
        ["message"] = message,
    }.ToJsonString());

    private static byte[] Plain(JsonObject message) => Encoding.UTF8.GetBytes(message.ToJsonString());

    private static Dictionary<string, object?> TypeHeader() => new() { ["MT-MessageType"] = IntentUrn };

    private static string Header(BasicGetResult result, string name) =>
        result.BasicProperties.Headers?.TryGetValue(name, out var value) == true
            ? value switch { byte[] b => Encoding.UTF8.GetString(b), _ => value?.ToString() ?? "" }
            : "";

    [Fact]
    public async Task An_envelope_published_to_the_type_exchange_with_RabbitMQ_Client_is_consumed()
    {
        await using var bus = await RabbitMqBusHarness.StartAsync(rabbit.AmqpUri);
        var id = Guid.NewGuid();

        await bus.PublishAsync("MeshBus.Contracts:IntentSubmitted", Envelope(IntentJson(id)), EnvelopeContentType);

        await RabbitMqBusHarness.EventuallyAsync(() => bus.Log.Intents.Any(i => i.IntentId == id), "the intent");
        var intent = bus.Log.Intents.Single(i => i.IntentId == id);
        Assert.Equal("acme.example/prod/agents/deployer", intent.Agent);
        Assert.Equal(600, intent.MaxDurationSeconds);
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero), intent.IssuedAt);
        Assert.Equal(3, intent.Parameters!.Value.GetProperty("replicas").GetInt32());
        Assert.Equal(1, intent.MessageVersion);
    }

    [Fact]
    public async Task Plain_JSON_with_a_type_header_sent_to_the_endpoint_is_consumed()
    {
        await using var bus = await RabbitMqBusHarness.StartAsync(rabbit.AmqpUri);
        var id = Guid.NewGuid();

        await bus.PublishAsync(bus.Queue, Plain(IntentJson(id)), "application/json", TypeHeader());

        await RabbitMqBusHarness.EventuallyAsync(() => bus.Log.Intents.Any(i => i.IntentId == id), "the intent");
        Assert.Equal("k8s://cluster-a/ns/web", bus.Log.Intents.Single(i => i.IntentId == id).Resource);
    }

    [Theory]
    [InlineData(EnvelopeContentType)]
    [InlineData("application/json")]
    public async Task Garbage_bytes_land_in_the_error_queue_with_the_reason_and_the_next_message_is_consumed(string contentType)
    {
        await using var bus = await RabbitMqBusHarness.StartAsync(rabbit.AmqpUri);
        var garbage = new byte[] { 0xde, 0xad, 0xbe, 0xef, (byte)'{', 0x00, 0xff };
        var id = Guid.NewGuid();

        await bus.PublishAsync(bus.Queue, garbage, contentType, TypeHeader());
        await bus.PublishAsync(bus.Queue, Envelope(IntentJson(id)), EnvelopeContentType);

        var error = await bus.NextErrorAsync();
        Assert.Equal(garbage, error.Body.ToArray());
        // the exception MassTransit met reading the body, e.g. System.Text.Json.JsonReaderException
        Assert.Contains("Json", Header(error, "MT-Fault-ExceptionType"), StringComparison.Ordinal);
        Assert.NotEmpty(Header(error, "MT-Fault-Message"));
        await RabbitMqBusHarness.EventuallyAsync(() => bus.Log.Intents.Any(i => i.IntentId == id), "the good intent after the garbage");
    }

    [Fact]
    public async Task JSON_of_the_wrong_shape_lands_in_the_error_queue_at_once_naming_the_missing_fields()
    {
        await using var bus = await RabbitMqBusHarness.StartAsync(rabbit.AmqpUri, immediateRetries: 3);
        var id = Guid.NewGuid();

        await bus.PublishAsync(bus.Queue, Plain(new JsonObject { ["hello"] = "world" }), "application/json", TypeHeader());
        await bus.PublishAsync(bus.Queue, Plain(IntentJson(id)), "application/json", TypeHeader());

        var error = await bus.NextErrorAsync();
        Assert.Equal(typeof(Hosting.MalformedMessageException).FullName, Header(error, "MT-Fault-ExceptionType"));
        var reason = Header(error, "MT-Fault-Message");
        Assert.Contains("IntentSubmitted is malformed", reason, StringComparison.Ordinal);
        Assert.Contains("intentId is missing", reason, StringComparison.Ordinal);
        Assert.Contains("agent is missing", reason, StringComparison.Ordinal);
        Assert.Equal("{\"hello\":\"world\"}", Encoding.UTF8.GetString(error.Body.Span));
        await RabbitMqBusHarness.EventuallyAsync(() => bus.Log.Intents.Any(i => i.IntentId == id), "the good intent after the bad one");
        // the malformed message never reached the consumer (it would have come with an empty id), nor was it retried
        Assert.Equal(0, bus.Log.AttemptsFor(Guid.Empty));
        Assert.Equal(1, bus.Log.AttemptsFor(id));
    }

    [Fact]
    public async Task A_field_of_the_wrong_type_lands_in_the_error_queue_and_the_next_message_is_consumed()
    {
        await using var bus = await RabbitMqBusHarness.StartAsync(rabbit.AmqpUri);
        var bad = IntentJson(Guid.NewGuid());
        bad["intentId"] = "not-a-guid";
        bad["nonce"] = "wrong-type-" + Guid.NewGuid();
        var id = Guid.NewGuid();

        await bus.PublishAsync(bus.Queue, Envelope(bad), EnvelopeContentType);
        await bus.PublishAsync(bus.Queue, Envelope(IntentJson(id)), EnvelopeContentType);

        var error = await bus.NextErrorAsync();
        Assert.NotEmpty(Header(error, "MT-Fault-ExceptionType"));
        Assert.NotEmpty(Header(error, "MT-Fault-Message"));
        await RabbitMqBusHarness.EventuallyAsync(() => bus.Log.Intents.Any(i => i.IntentId == id), "the good intent after the bad one");
        Assert.DoesNotContain(bus.Log.Intents, i => i.Nonce == bad["nonce"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_consumer_that_throws_publishes_a_fault_and_the_message_lands_in_the_error_queue_after_retries()
    {
        await using var bus = await RabbitMqBusHarness.StartAsync(rabbit.AmqpUri, immediateRetries: 2, withFaultProbe: true);
        var id = Guid.NewGuid();

        await bus.PublishAsync(bus.Queue, Envelope(IntentJson(id, action: "explode")), EnvelopeContentType);

        var error = await bus.NextErrorAsync();
        Assert.Equal(typeof(InvalidOperationException).FullName, Header(error, "MT-Fault-ExceptionType"));
        Assert.Contains("rejects action 'explode'", Header(error, "MT-Fault-Message"), StringComparison.Ordinal);
        Assert.Equal(3, bus.Log.AttemptsFor(id));
        await RabbitMqBusHarness.EventuallyAsync(() => bus.Log.Faults.Any(f => f.Message.IntentId == id), "Fault<IntentSubmitted>");
        var fault = bus.Log.Faults.Single(f => f.Message.IntentId == id);
        Assert.Contains(fault.Exceptions, e => e.Message.Contains("explode", StringComparison.Ordinal));
    }
}
