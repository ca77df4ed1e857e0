using MassTransit;
using MeshBus.Contracts;
using MeshBus.Hosting;
using MeshBus.Trust;
using Microsoft.Extensions.DependencyInjection;

namespace MeshBus.Workers.Enforce.Reports;

/// <summary>
/// The agent ingress of execution reports: what reaches it has passed the ingress checks (type, limits) and the
/// report verification (<see cref="ExecutionReportVerifier"/>), and only then is published where the lifecycle saga
/// and lineage listen. Nothing an agent writes reaches them any other way.
/// </summary>
public sealed class ReportIngressConsumer :
    IConsumer<ExecutionStarted>,
    IConsumer<ExecutionHeartbeat>,
    IConsumer<ExecutionCompleted>,
    IConsumer<ExecutionHalted>
{
    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionStarted> context) => context.Publish(context.Message, context.CancellationToken);

    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionHeartbeat> context) => context.Publish(context.Message, context.CancellationToken);

    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionCompleted> context) => context.Publish(context.Message, context.CancellationToken);

    /// <inheritdoc />
    public Task Consume(ConsumeContext<ExecutionHalted> context) => context.Publish(context.Message, context.CancellationToken);
}

/// <summary>The report ingress endpoint: bound to <see cref="AgentIngress.ReportsExchange"/> only, checked before dispatch.</summary>
public sealed class ReportIngressConsumerDefinition : ConsumerDefinition<ReportIngressConsumer>
{
    /// <summary>Creates the definition.</summary>
    /// <param name="names">The hosting's endpoint names (entity prefix), when registered.</param>
    public ReportIngressConsumerDefinition(MeshBusEndpointNameFormatter? names = null)
    {
        EndpointName = MeshBusEndpointNameFormatter.Name(names, "enforce-reports");
        ConcurrentMessageLimit = 32;
    }

    /// <inheritdoc />
    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator, IConsumerConfigurator<ReportIngressConsumer> consumerConfigurator, IRegistrationContext context)
    {
        AgentIngressEndpoint.Configure(endpointConfigurator, context, AgentIngress.ReportsExchange, [.. AgentIngress.ReportTypes], o => o.MaxReportBytes);
        // An agent reports as soon as it holds the grant, which may be before the saga recorded that grant: wait for it
        // a little here (around the verification), then the endpoint's redelivery, then the error queue.
        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Handle<ReportNotYetVerifiableException>();
            r.Intervals(20, 50, 100, 200, 500, 1000, 2000);
        });
        endpointConfigurator.UseFilter(new ExecutionReportVerificationFilter(context.GetRequiredService<ExecutionReportVerifier>()));
    }
}
