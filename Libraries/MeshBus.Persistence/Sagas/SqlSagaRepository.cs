using MassTransit;
using MassTransit.Configuration;
using MassTransit.Context;
using MassTransit.Saga;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MeshBus.Persistence;

/// <summary>Registers the SQL saga repository.</summary>
public static class SqlSagaRepositoryExtensions
{
    /// <summary>
    /// Stores <typeparamref name="TSaga"/> in the saga table of <paramref name="options"/>: one JSON row per correlation
    /// id with a version column. Each message runs in one transaction; a conflicting write throws
    /// <see cref="ConcurrencyException"/>, which the endpoint's retry policy redelivers, so no event is lost.
    /// Correlation is by id only (no query correlation). Also registers <see cref="ISagaIndex"/> and
    /// <see cref="ISagaStateReader"/>.
    /// </summary>
    public static ISagaRegistrationConfigurator<TSaga> SqlRepository<TSaga>(this ISagaRegistrationConfigurator<TSaga> configurator, SqlStoreOptions options)
        where TSaga : class, ISaga, ISagaVersion
    {
        ArgumentNullException.ThrowIfNull(configurator);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        configurator.Repository(services =>
        {
            services.AddSingleton(new SqlSagaBinding(SagaTypeName.Of<TSaga>(), new SqlDatabase(options)));
            services.TryAddSingleton<SqlSagaQueries>();
            services.TryAddSingleton<ISagaIndex>(provider => provider.GetRequiredService<SqlSagaQueries>());
            services.TryAddSingleton<ISagaStateReader>(provider => provider.GetRequiredService<SqlSagaQueries>());
            services.TryAddSingleton<ISagaRetention>(provider => provider.GetRequiredService<SqlSagaQueries>());
            services.RegisterSagaRepository<TSaga, SqlSagaSession<TSaga>, SagaConsumeContextFactory<SqlSagaSession<TSaga>, TSaga>,
                SqlSagaRepositoryContextFactory<TSaga>>();
        });
        return configurator;
    }
}

/// <summary>Which store a saga type lives in.</summary>
internal sealed record SqlSagaBinding(string SagaType, SqlDatabase Database);

/// <summary>Opens one transaction per message and hands MassTransit's saga pipe a context over it.</summary>
internal sealed class SqlSagaRepositoryContextFactory<TSaga> : ISagaRepositoryContextFactory<TSaga>
    where TSaga : class, ISaga, ISagaVersion
{
    private readonly SqlDatabase _database;
    private readonly ISagaConsumeContextFactory<SqlSagaSession<TSaga>, TSaga> _factory;
    private readonly ILogger _logger;

    public SqlSagaRepositoryContextFactory(
        IEnumerable<SqlSagaBinding> bindings,
        ISagaConsumeContextFactory<SqlSagaSession<TSaga>, TSaga> factory,
        ILoggerFactory? loggerFactory = null)
    {
        _database = SqlSagaQueries.Find(bindings, SagaTypeName.Of<TSaga>());
        _factory = factory;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<SqlSagaRepositoryContextFactory<TSaga>>();
    }

    public void Probe(ProbeContext context)
    {
        context.Add("persistence", "sql");
        context.Add("provider", _database.Options.Provider.ToString());
        context.Add("table", _database.Options.SagaTable);
    }

    public async Task Send<T>(ConsumeContext<T> context, IPipe<SagaRepositoryContext<TSaga, T>> next)
        where T : class
    {
        var cancellationToken = context.CancellationToken;
        await _database.EnsureSchemaAsync(cancellationToken);
        var gate = _database.WriteGate;
        if (gate is not null)
        {
            await gate.WaitAsync(cancellationToken);
        }

        try
        {
            await using var session = await SqlSagaSession<TSaga>.BeginAsync(_database, cancellationToken);
            var repositoryContext = new SqlSagaRepositoryContext<TSaga, T>(session, context, _factory);
            await next.Send(repositoryContext);
            await session.CommitAsync(cancellationToken);
        }
        catch (ConcurrencyException e)
        {
            _logger.LogDebug(e, "Saga {SagaType} {CorrelationId}: concurrent update, the message will be retried", e.SagaType?.Name, e.CorrelationId);
            throw;
        }
        finally
        {
            gate?.Release();
        }
    }

    public Task SendQuery<T>(ConsumeContext<T> context, ISagaQuery<TSaga> query, IPipe<SagaRepositoryQueryContext<TSaga, T>> next)
        where T : class =>
        throw new NotSupportedException(
            $"The SQL saga repository correlates {typeof(TSaga).Name} by CorrelationId only; correlate {typeof(T).Name} by id, or find ids with ISagaIndex first.");
}

/// <summary>The saga pipe's view of one message's session.</summary>
internal sealed class SqlSagaRepositoryContext<TSaga, TMessage> : ConsumeContextScope<TMessage>, SagaRepositoryContext<TSaga, TMessage>
    where TSaga : class, ISaga, ISagaVersion
    where TMessage : class
{
    private readonly SqlSagaSession<TSaga> _session;
    private readonly ConsumeContext<TMessage> _consumeContext;
    private readonly ISagaConsumeContextFactory<SqlSagaSession<TSaga>, TSaga> _factory;

    public SqlSagaRepositoryContext(SqlSagaSession<TSaga> session, ConsumeContext<TMessage> consumeContext, ISagaConsumeContextFactory<SqlSagaSession<TSaga>, TSaga> factory)
        : base(consumeContext, session)
    {
        _session = session;
        _consumeContext = consumeContext;
        _factory = factory;
    }

    public Task<SagaConsumeContext<TSaga, T>> CreateSagaConsumeContext<T>(ConsumeContext<T> consumeContext, TSaga instance, SagaConsumeContextMode mode)
        where T : class => _factory.CreateSagaConsumeContext(_session, consumeContext, instance, mode);

    public Task<SagaConsumeContext<TSaga, TMessage>> Add(TSaga instance) =>
        _factory.CreateSagaConsumeContext(_session, _consumeContext, instance, SagaConsumeContextMode.Add);

    public async Task<SagaConsumeContext<TSaga, TMessage>> Insert(TSaga instance)
    {
        // null tells MassTransit the instance exists already; it then loads it instead.
        return await _session.TryInsertAsync(instance, CancellationToken)
            ? await _factory.CreateSagaConsumeContext(_session, _consumeContext, instance, SagaConsumeContextMode.Insert)
            : null!;
    }

    public async Task<SagaConsumeContext<TSaga, TMessage>> Load(Guid correlationId)
    {
        var instance = await _session.LoadAsync(correlationId, CancellationToken);
        return instance is null
            ? null!
            : await _factory.CreateSagaConsumeContext(_session, _consumeContext, instance, SagaConsumeContextMode.Load);
    }

    public Task Save(SagaConsumeContext<TSaga> context) => _session.InsertAsync(context.Saga, CancellationToken);

    public Task Update(SagaConsumeContext<TSaga> context) => _session.UpdateAsync(context.Saga, CancellationToken);

    public Task Delete(SagaConsumeContext<TSaga> context) => _session.DeleteAsync(context.Saga, CancellationToken);

    // Nothing to undo by hand: whatever was written is rolled back with the transaction when the pipe faults.
    public Task Discard(SagaConsumeContext<TSaga> context) => Task.CompletedTask;

    public Task Undo(SagaConsumeContext<TSaga> context) => Task.CompletedTask;
}
