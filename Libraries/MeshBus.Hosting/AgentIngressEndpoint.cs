using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Reflection;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MeshBus.Hosting;

/// <summary>
/// Makes a receive endpoint an agent ingress (DESIGN.md §9): it reads only the exchange agents may write (never the
/// type-named exchanges workers publish among themselves), and before anything is dispatched it rejects — to the
/// error queue at once, with the reason, counted in <c>meshbus.ingress.rejected</c> — a message that does not claim
/// exactly one of the accepted types, whatever else its envelope says, and input over the
/// <see cref="AgentIngressOptions"/> limits. A worker that consumes the ingress checks what it accepts and only then
/// publishes it where the other workers listen.
/// </summary>
public static class AgentIngressEndpoint
{
    private static readonly Counter<long> Rejected =
        MeshBusServiceCollectionExtensions.Meter.CreateCounter<long>("meshbus.ingress.rejected", description: "Messages refused at the agent ingress, by ingress and reason");

    /// <summary>Counts a refusal at an ingress (type, limit, or a check of the consuming worker such as a report signature).</summary>
    /// <param name="ingress">The ingress exchange (without prefix).</param>
    /// <param name="reason">A short reason label, e.g. <c>type</c>, <c>limit</c>, <c>signature</c>.</param>
    public static void CountRejection(string ingress, string reason) =>
        Rejected.Add(1, new KeyValuePair<string, object?>("ingress", ingress), new KeyValuePair<string, object?>("reason", reason));

    /// <summary>
    /// Binds <paramref name="endpoint"/> to the ingress exchange <paramref name="exchange"/> (under the entity prefix) and
    /// nothing else, and adds the type and limit checks. Call it from the consumer definition of the endpoint.
    /// </summary>
    /// <param name="endpoint">The receive endpoint.</param>
    /// <param name="context">The registration context (the entity prefix and the limits come from it).</param>
    /// <param name="exchange">The ingress exchange name without prefix, e.g. <c>agent-intents</c>.</param>
    /// <param name="acceptedTypes">The contract types this ingress accepts.</param>
    /// <param name="maxBytes">Which limit bounds the body: intents' or reports'.</param>
    /// <param name="bind">False for a worker isolated on a shared broker (load runs) that is sent to directly: the checks
    /// stay, the binding is left out.</param>
    public static void Configure(IReceiveEndpointConfigurator endpoint, IRegistrationContext context, string exchange, IReadOnlyCollection<Type> acceptedTypes, Func<AgentIngressOptions, int> maxBytes, bool bind = true)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(maxBytes);
        var prefix = context.GetService<MeshBusEndpointNameFormatter>()?.EntityPrefix ?? "";
        // Only the ingress exchange: binding the type exchanges would let an agent's message arrive by another route,
        // and would loop back what the worker itself publishes after its checks.
        endpoint.ConfigureConsumeTopology = false;
        switch (bind ? endpoint : null)
        {
            case IRabbitMqReceiveEndpointConfigurator rabbit:
                rabbit.Bind(prefix + exchange);
                break;
            case IInMemoryReceiveEndpointConfigurator memory:
                memory.Bind(prefix + exchange);
                break;
        }

        var options = context.GetRequiredService<IOptions<AgentIngressOptions>>().Value;
        endpoint.UseFilter(new AgentIngressFilter(exchange, acceptedTypes, options, maxBytes(options)));
        // MassTransit runs endpoint filters inside the pipe of a type the endpoint consumes; a type nobody here consumes
        // would skip them and land in <queue>_skipped. So every other contract type gets a handler too: the filter
        // above rejects it (to the error queue, with the reason) before that handler could run.
        foreach (var type in ContractTypes.Except(acceptedTypes))
        {
            RejectHandler.MakeGenericMethod(type).Invoke(null, [endpoint, exchange]);
        }
    }

    private static readonly Type[] ContractTypes = typeof(Contracts.GovernanceReason).Assembly.GetTypes()
        .Where(t => t is { IsPublic: true, IsClass: true, IsAbstract: false, Namespace: "MeshBus.Contracts" })
        .ToArray();

    private static readonly MethodInfo RejectHandler = typeof(AgentIngressEndpoint).GetMethod(nameof(Reject), BindingFlags.NonPublic | BindingFlags.Static)!;

    private static void Reject<T>(IReceiveEndpointConfigurator endpoint, string exchange)
        where T : class =>
        endpoint.Handler<T>(_ => throw new RejectedMessageException($"the agent ingress '{exchange}' does not accept {typeof(T).Name}"));
}

/// <summary>The ingress's checks before dispatch: exactly one accepted type, then the size and content limits.</summary>
internal sealed class AgentIngressFilter : IFilter<ConsumeContext>
{
    private static readonly MethodInfo CheckContentMethod = typeof(AgentIngressFilter).GetMethod(nameof(CheckContent), BindingFlags.NonPublic | BindingFlags.Instance)!;
    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> Properties = new();
    private readonly string _exchange;
    private readonly Dictionary<string, Type> _accepted;
    private readonly AgentIngressOptions _options;
    private readonly int _maxBytes;

    public AgentIngressFilter(string exchange, IReadOnlyCollection<Type> acceptedTypes, AgentIngressOptions options, int maxBytes)
    {
        _exchange = exchange;
        _accepted = acceptedTypes.ToDictionary(t => MessageUrn.ForTypeString(t), t => t, StringComparer.Ordinal);
        _options = options;
        _maxBytes = maxBytes;
    }

    public Task Send(ConsumeContext context, IPipe<ConsumeContext> next)
    {
        var claimed = context.SupportedMessageTypes.Distinct(StringComparer.Ordinal).ToList();
        Type? type = null;
        if (claimed.Count != 1 || !_accepted.TryGetValue(claimed[0], out type))
        {
            Reject("type", claimed.Count == 0
                ? $"MalformedInput: a message on the agent ingress '{_exchange}' must name its type (messageType, or the MT-MessageType header)"
                : $"the agent ingress '{_exchange}' accepts only {string.Join(", ", _accepted.Values.Select(t => t.Name))}, one type per message; this one claims {string.Join(", ", claimed)}");
        }

        var length = context.ReceiveContext.Body.Length ?? context.ReceiveContext.Body.GetBytes().Length;
        if (length > _maxBytes)
        {
            Reject("limit", $"MalformedInput: the message is {length} bytes, over the limit of {_maxBytes} for '{_exchange}'");
        }

        var problem = (string?)CheckContentMethod.MakeGenericMethod(type!).Invoke(this, [context]);
        if (problem is not null)
        {
            Reject("limit", "MalformedInput: " + problem);
        }

        return next.Send(context);
    }

    public void Probe(ProbeContext context) => context.CreateFilterScope("meshbus-agent-ingress");

    private string? CheckContent<T>(ConsumeContext context)
        where T : class
    {
        // An unreadable body is not ours to judge: the dispatch after this filter fails on it and reports why.
        if (!context.TryGetMessage<T>(out var typed) || typed.Message is not { } message)
        {
            return null;
        }

        foreach (var property in Properties.GetOrAdd(typeof(T), t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)))
        {
            var value = property.GetValue(message);
            var name = JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            if (value is string s)
            {
                var max = name == "credential" ? _options.MaxCredentialLength : _options.MaxStringLength;
                if (s.Length > max)
                {
                    return $"{name} is {s.Length} characters, over the limit of {max}";
                }
            }
            else if (value is JsonElement e && e.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
            {
                var count = 0;
                if (JsonProblem(e, name, 1, ref count) is { } problem)
                {
                    return problem;
                }
            }
        }

        return null;
    }

    private string? JsonProblem(JsonElement e, string path, int depth, ref int count)
    {
        if (depth > _options.MaxParameterDepth)
        {
            return $"{path} nests deeper than the limit of {_options.MaxParameterDepth}";
        }

        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var member in e.EnumerateObject())
                {
                    if (++count > _options.MaxParameterCount)
                    {
                        return $"{path} holds more than the limit of {_options.MaxParameterCount} values";
                    }

                    if (member.Name.Length > _options.MaxStringLength)
                    {
                        return $"a member name in {path} is over the limit of {_options.MaxStringLength} characters";
                    }

                    if (JsonProblem(member.Value, path + "." + member.Name, depth + 1, ref count) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    if (++count > _options.MaxParameterCount)
                    {
                        return $"{path} holds more than the limit of {_options.MaxParameterCount} values";
                    }

                    if (JsonProblem(item, $"{path}[{i++}]", depth + 1, ref count) is { } problem)
                    {
                        return problem;
                    }
                }

                return null;
            case JsonValueKind.String:
                return e.GetString()!.Length > _options.MaxStringLength ? $"{path} is over the limit of {_options.MaxStringLength} characters" : null;
            default:
                return null;
        }
    }

    private void Reject(string label, string reason)
    {
        AgentIngressEndpoint.CountRejection(_exchange, label);
        throw new RejectedMessageException(reason);
    }
}
