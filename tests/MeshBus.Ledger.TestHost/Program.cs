using System.Text;
using MeshBus.Ledger;

// meshbus-ledger-testhost (sqlite PATH | postgres CS) PREFIX COUNT [CONCURRENCY]
// Appends COUNT entries "PREFIX:n" with CONCURRENCY concurrent callers; prints "ACK <key> <index>" after each
// acknowledged (committed) append, then "DONE".
if (args.Length < 4 || args[0] is not ("sqlite" or "postgres"))
{
    Console.Error.WriteLine("usage: (sqlite PATH | postgres CS) PREFIX COUNT [CONCURRENCY]");
    return 2;
}

var prefix = args[2];
var count = long.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
var concurrency = args.Length > 4 ? int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture) : 16;
await using var log = args[0] == "sqlite" ? LineageLogs.OpenSqlite(args[1]) : await LineageLogs.OpenPostgresAsync(args[1]);
var next = -1L;
var output = Console.Out;
await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
{
    long n;
    while ((n = Interlocked.Increment(ref next)) < count)
    {
        var key = $"{prefix}:{n}";
        var r = await log.AppendAsync(new LineageEntry(key, "TestEvent", Encoding.UTF8.GetBytes($"{{\"type\":\"TestEvent\",\"n\":{n},\"prefix\":\"{prefix}\"}}")));
        output.WriteLine($"ACK {key} {r.Index}");
    }
})));
output.WriteLine("DONE");
return 0;
