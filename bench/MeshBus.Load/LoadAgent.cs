using System.Collections.Concurrent;
using System.Text.Json;
using MassTransit;
using MeshBus.Contracts;
using MeshBus.Trust;
using MeshBus.Trust.Crypto;

namespace MeshBus.Load;

/// <summary>
/// An agent of the load: its key, a credential from its domain, intents signed ahead of a measured run (agent CPU is not
/// the mesh's; a run that uses more than were signed signs the rest on the fly), and the answers arriving on its queue.
/// </summary>
public sealed class LoadAgent
{
    private static readonly JsonElement Parameters = JsonDocument.Parse("""{"replicas":3}""").RootElement.Clone();
    private readonly byte[] _privateKey = Ed25519Keys.NewPrivateKey();
    private readonly ConcurrentQueue<IntentSubmitted> _signed = new();
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource<object>> _answers = new();
    private int _denialsShown;

    /// <summary>An agent <paramref name="name"/> of <paramref name="domain"/> whose credential <paramref name="credentialKey"/> signs.</summary>
    public LoadAgent(string domain, string name, ISigner credentialKey, DateTimeOffset now)
    {
        Domain = domain;
        Subject = domain + "/agents/" + name;
        PublicKey = Ed25519Keys.PublicKeyOf(_privateKey);
        Credential = Credentials.Issue(
            new CredentialClaims(domain, Subject, "c-" + name, Base64Url.Encode(PublicKey),
                new AgentAttributes("sha256:0123", "load", "bench", ["deployers"]), now.AddMinutes(-1), now.AddMinutes(-1), now.AddHours(2)),
            credentialKey);
    }

    /// <summary>The agent's home domain.</summary>
    public string Domain { get; }

    /// <summary>The agent's subject (its queue is derived from it).</summary>
    public string Subject { get; }

    /// <summary>The agent's public key (the grants' <c>cnf</c>).</summary>
    public byte[] PublicKey { get; }

    /// <summary>The agent's credential (JWS).</summary>
    public string Credential { get; }

    /// <summary>Where the intents go.</summary>
    public string TargetDomain { get; init; } = "";

    /// <summary>Replaces the signed intents with <paramref name="count"/> fresh ones (none may be older than the run).</summary>
    public Task PrepareAsync(int count)
    {
        _signed.Clear();
        for (var i = 0; i < count; i++)
        {
            _signed.Enqueue(Sign());
        }

        return Task.CompletedTask;
    }

    /// <summary>Sends the next intent through <paramref name="send"/> and waits for its answer; true on a grant.</summary>
    public async Task<bool> GrantAsync(Func<IntentSubmitted, Task> send, Func<IntentSubmitted, GrantIssued, bool>? check = null)
    {
        var intent = _signed.TryDequeue(out var ready) ? ready : Sign();
        var answer = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        _answers[intent.IntentId] = answer;
        try
        {
            await send(intent);
            var result = await answer.Task.WaitAsync(TimeSpan.FromSeconds(30));
            return result is GrantIssued grant && (check is null || check(intent, grant));
        }
        finally
        {
            _answers.TryRemove(intent.IntentId, out _);
        }
    }

    /// <summary>The agent's queue received an answer.</summary>
    public Task Answered(Guid intentId, object answer)
    {
        if (answer is GrantDenied denied && Interlocked.Increment(ref _denialsShown) <= 5)
        {
            Console.Error.WriteLine($"{Subject}: denied {intentId}: {denied.Reason} {denied.Detail}");
        }

        if (_answers.TryGetValue(intentId, out var waiting))
        {
            waiting.TrySetResult(answer);
        }

        return Task.CompletedTask;
    }

    /// <summary>The agent's queue on a bus: answers only, never bound to published types.</summary>
    public void ConfigureQueue(IReceiveEndpointConfigurator e)
    {
        e.ConfigureConsumeTopology = false;
        e.Handler<GrantIssued>(c => Answered(c.Message.IntentId, c.Message));
        e.Handler<GrantDenied>(c => Answered(c.Message.IntentId, c.Message));
    }

    private IntentSubmitted Sign() => IntentSignature.Sign(
        new IntentSubmitted(Guid.NewGuid(), Domain, Subject, TargetDomain.Length > 0 ? TargetDomain : Domain, "deploy", "k8s://cluster-a/ns/web",
            Parameters, 600, Guid.NewGuid().ToString("N")[..16], DateTimeOffset.UtcNow, Credential, ""),
        _privateKey);
}
