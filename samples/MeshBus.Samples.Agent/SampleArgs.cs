using System.Globalization;

namespace MeshBus.Samples.Agent;

/// <summary>The sample agent's command line.</summary>
internal sealed record SampleArgs(
    Uri Broker,
    string User,
    string Password,
    string Subject,
    string HomeDomain,
    string KeyFile,
    string CredentialFile,
    string TrustDirectory,
    string Action,
    string Resource,
    string TargetDomain,
    string Prefix,
    TimeSpan Timeout,
    bool Run)
{
    public const string Usage = """
        Usage: meshbus-sample-agent --broker amqp://HOST:PORT/VHOST --user USER --password-file FILE
                                    --subject SUBJECT --home DOMAIN --key FILE --credential FILE --trust DIR
                                    --action ACTION --resource RESOURCE [--target DOMAIN] [--prefix PREFIX]
                                    [--timeout SECONDS] [--run]
          --user, --password-file  the agent's own broker user (meshbus agent provision)
          --key                    the agent key (meshbus agent keygen)
          --credential             the credential JWS (meshbus agent issue)
          --trust                  pinned roots and key sets (meshbus trust export --out) to verify the grant
          --target                 the resource's domain (default: the home domain)
          --timeout                bound of the whole run, including waiting for governance sync (default 90)
          --run                    after the grant, report the execution started and completed
        """;

    public static SampleArgs Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var run = false;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--run")
            {
                run = true;
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal) && i + 1 < args.Length)
            {
                values[args[i][2..]] = args[++i];
            }
            else
            {
                throw new ArgumentException($"unexpected argument '{args[i]}'");
            }
        }

        string Required(string name) =>
            values.Remove(name, out var v) && v.Length > 0 ? v : throw new ArgumentException($"--{name} is required");

        var broker = Uri.TryCreate(Required("broker"), UriKind.Absolute, out var uri) && uri.Scheme == "amqp"
            ? uri
            : throw new ArgumentException("--broker must be an amqp:// URI");
        var user = Required("user");
        var password = File.ReadAllText(Required("password-file")).TrimEnd('\n', '\r');
        var home = Required("home");
        var parsed = new SampleArgs(broker, user, password, Required("subject"), home, Required("key"), Required("credential"),
            Required("trust"), Required("action"), Required("resource"),
            values.Remove("target", out var target) ? target : home,
            values.Remove("prefix", out var prefix) ? prefix : "",
            TimeSpan.FromSeconds(values.Remove("timeout", out var t) && int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s > 0
                ? s
                : t is null ? 90 : throw new ArgumentException("--timeout takes a positive number of seconds")),
            run);
        return values.Count == 0 ? parsed : throw new ArgumentException($"unknown option --{values.Keys.First()}");
    }
}
