namespace MeshBus.Persistence;

/// <summary>
/// A saga that is found by more than its correlation id. The repository replaces the saga's rows in the index table
/// with <see cref="IndexKeys"/> in the same transaction as the saga's state, so the index never disagrees with a
/// committed state; a finalized (deleted) saga leaves no rows behind. The property is not stored in the state.
/// </summary>
public interface IIndexedSaga
{
    /// <summary>The keys this instance is found by now, e.g. <c>("peer", "acme.example/prod")</c>; duplicates are ignored.</summary>
    IEnumerable<(string Kind, string Value)> IndexKeys { get; }
}

/// <summary>Finds saga instances by the keys they wrote through <see cref="IIndexedSaga"/>.</summary>
public interface ISagaIndex
{
    /// <summary>The correlation ids of the instances of <paramref name="sagaType"/> holding the key, in no particular order.</summary>
    /// <param name="sagaType">The saga's name as <see cref="SagaTypeName.Of{TSaga}"/> gives it.</param>
    /// <param name="kind">The key's kind, e.g. <c>peer</c>, <c>agent</c> or <c>key</c>.</param>
    /// <param name="value">The key's value.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <exception cref="ArgumentException">The saga type was not registered with <c>SqlRepository</c>.</exception>
    Task<IReadOnlyList<Guid>> FindAsync(string sagaType, string kind, string value, CancellationToken cancellationToken = default);
}

/// <summary>Reads a saga's committed state outside a message, for queries, tools and tests.</summary>
public interface ISagaStateReader
{
    /// <summary>The committed state of one instance, or <c>null</c> when there is none (never created, or finalized).</summary>
    /// <exception cref="ArgumentException">The saga type was not registered with <c>SqlRepository</c>.</exception>
    Task<TSaga?> LoadAsync<TSaga>(Guid correlationId, CancellationToken cancellationToken = default)
        where TSaga : class, MassTransit.ISaga, MassTransit.ISagaVersion;

    /// <summary>
    /// How many committed instances of <typeparamref name="TSaga"/> are in each value of its state member
    /// <paramref name="stateMember"/> (the JSON name, e.g. <c>currentState</c>).
    /// </summary>
    /// <exception cref="ArgumentException">The saga type was not registered with <c>SqlRepository</c>, or the member is no plain name.</exception>
    Task<IReadOnlyDictionary<string, long>> CountByStateAsync<TSaga>(string stateMember, CancellationToken cancellationToken = default)
        where TSaga : class, MassTransit.ISaga;
}

/// <summary>Removes finished saga instances, so the saga table does not grow forever.</summary>
public interface ISagaRetention
{
    /// <summary>
    /// Deletes the instances of <typeparamref name="TSaga"/> whose state member <paramref name="stateMember"/> (JSON name)
    /// is one of <paramref name="finalStates"/> and that were last written before <paramref name="updatedBefore"/>,
    /// with their index rows, in one transaction. Returns how many instances were deleted.
    /// </summary>
    /// <exception cref="ArgumentException">The saga type was not registered with <c>SqlRepository</c>, or the member is no plain name.</exception>
    Task<int> DeleteFinishedAsync<TSaga>(string stateMember, IReadOnlyCollection<string> finalStates, DateTimeOffset updatedBefore, CancellationToken cancellationToken = default)
        where TSaga : class, MassTransit.ISaga;
}

/// <summary>The name a saga type is stored under (the <c>saga_type</c> column).</summary>
public static class SagaTypeName
{
    /// <summary>The full name of <typeparamref name="TSaga"/>: renaming the class orphans its stored instances.</summary>
    public static string Of<TSaga>() => Of(typeof(TSaga));

    /// <summary>The full name of <paramref name="sagaType"/>.</summary>
    public static string Of(Type sagaType) => sagaType.FullName ?? sagaType.Name;
}

/// <summary>Typed shortcuts over <see cref="ISagaIndex"/>.</summary>
public static class SagaIndexExtensions
{
    /// <summary>The correlation ids of the <typeparamref name="TSaga"/> instances holding the key.</summary>
    public static Task<IReadOnlyList<Guid>> FindAsync<TSaga>(this ISagaIndex index, string kind, string value, CancellationToken cancellationToken = default)
        where TSaga : class => index.FindAsync(SagaTypeName.Of<TSaga>(), kind, value, cancellationToken);
}
