using MassTransit;
using MeshBus.Agent;
using MeshBus.Contracts;
using MeshBus.Samples.Agent;
using MeshBus.Trust;

// A small agent on the MeshBus agent SDK: connects to its home domain's RabbitMQ as its own broker user, submits one
// signed intent, waits for the decision and prints the verified grant (or the denial and its reason). With --run it
// also reports the execution started and completed. Exit codes: 0 granted, 1 denied, 2 bad arguments, 3 no decision.
SampleArgs options;
try
{
    options = SampleArgs.Parse(args);
}
catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"meshbus-sample-agent: {e.Message}");
    Console.Error.WriteLine(SampleArgs.Usage);
    return 2;
}

AgentKey key;
string credential;
TrustConfig trust;
try
{
    key = AgentKey.Load(options.KeyFile);
    credential = File.ReadAllText(options.CredentialFile).Trim();
    // The grant is verified against the deciding domain's keys, accepted only under the roots pinned in this directory.
    trust = TrustConfig.LoadDirectory(options.TrustDirectory);
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException or InvalidOperationException)
{
    Console.Error.WriteLine($"meshbus-sample-agent: {e.Message}");
    return 2;
}

var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
{
    cfg.Host(options.Broker, h =>
    {
        h.Username(options.User);
        h.Password(options.Password);
    });
    // MassTransit's own bus endpoint, named after the agent's queue so the agent's broker user may declare it.
    cfg.OverrideDefaultBusEndpointQueueName(AgentQueue.Name(options.Subject) + "-bus");
});

using var bound = new CancellationTokenSource(options.Timeout);
try
{
    await bus.StartAsync(bound.Token);
}
catch (Exception e) when (e is OperationCanceledException or MassTransitException or RabbitMqConnectionException)
{
    Console.Error.WriteLine($"meshbus-sample-agent: cannot connect to {options.Broker} as {options.User}: {e.Message}");
    return 3;
}

try
{
    await using var agent = await MeshBusAgent.ConnectAsync(bus, new MeshBusAgentOptions
    {
        Subject = options.Subject,
        HomeDomain = options.HomeDomain,
        PrivateKey = key.PrivateKey.ToArray(),
        Credential = credential,
        KeyResolver = trust,
        EntityPrefix = options.Prefix,
        // Longer than Authorize's wait for fresh governance (Authorize:SyncWaitSeconds, 20 s), so an intent that met
        // stale governance comes back as a SyncStale denial with its reason instead of a timeout here.
        DecisionTimeout = TimeSpan.FromSeconds(45),
    }, bound.Token);

    var request = new IntentRequest(options.Action, options.Resource)
    {
        TargetDomain = options.TargetDomain,
        MaxDuration = TimeSpan.FromMinutes(5),
    };
    while (true)
    {
        var outcome = await agent.SubmitIntentAsync(request with { IntentId = Guid.NewGuid() }, bound.Token);
        if (outcome.Lease is { } lease)
        {
            var c = lease.Claims;
            Console.WriteLine($"granted intent {c.IntentId} by {c.Issuer} for {c.Subject}");
            Console.WriteLine($"  {c.Action} {c.Resource} (aud {c.Audience})");
            Console.WriteLine($"  grant {c.GrantId}, key {lease.GrantKeyId}, lineage index {c.LineageIndex}, expires {c.ExpiresAt:u}");
            Console.WriteLine($"  policies {string.Join(", ", c.Policies.Select(p => $"{p.Domain} {p.Scope} epoch {p.Epoch}"))}");
            Console.WriteLine($"  jws {lease.Grant}");
            if (options.Run)
            {
                await lease.StartAsync(bound.Token);
                Console.WriteLine("execution started");
                await lease.CompleteAsync("sample agent: done", bound.Token);
                Console.WriteLine("execution completed");
            }

            return 0;
        }

        var denial = outcome.Denial!;
        // Right after the fleet starts, the domains may not yet hold each other's heartbeats: wait for them, bounded.
        if (denial.Reason == GovernanceReason.SyncStale && !denial.RejectedByAgent && !bound.IsCancellationRequested)
        {
            Console.Error.WriteLine($"waiting for governance sync: {denial.Detail}");
            await Task.Delay(TimeSpan.FromSeconds(2), bound.Token);
            continue;
        }

        Console.WriteLine($"denied intent {denial.IntentId}: {denial.Reason}{(denial.RejectedByAgent ? " (refused by the agent)" : "")}: {denial.Detail}");
        return 1;
    }
}
catch (Exception e) when (e is OperationCanceledException or IntentDecisionTimeoutException)
{
    Console.Error.WriteLine($"meshbus-sample-agent: no decision within {options.Timeout.TotalSeconds:0} s ({e.Message})");
    return 3;
}
finally
{
    await bus.StopAsync(CancellationToken.None);
}
