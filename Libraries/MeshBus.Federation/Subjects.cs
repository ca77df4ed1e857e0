using System.Globalization;
using System.Text;

namespace MeshBus.Federation;

/// <summary>
/// JetStream subjects of the bridge: <c>meshbus.&lt;to&gt;.&lt;from&gt;.&lt;type&gt;</c>. A domain name becomes one subject
/// token by keeping <c>[a-z0-9-]</c> and writing every other UTF-8 byte as <c>_</c> + two lower-case hex digits
/// (<c>acme.example/prod</c> → <c>acme_2eexample_2fprod</c>). The mapping is injective (<c>_</c> itself is escaped), so two
/// domains never share a token, and the result never contains the NATS separators <c>.</c>, <c>*</c> or <c>&gt;</c>.
/// </summary>
public static class Subjects
{
    /// <summary>The first token of every bridge subject.</summary>
    public const string Prefix = "meshbus";

    /// <summary>The subject token of a domain name.</summary>
    public static string Token(string domain)
    {
        ArgumentException.ThrowIfNullOrEmpty(domain);
        var sb = new StringBuilder(domain.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(domain))
        {
            if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('_').Append(b.ToString("x2", CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }

    /// <summary>The subject a message from <paramref name="from"/> to <paramref name="to"/> of <paramref name="type"/> is published on.</summary>
    public static string For(string to, string from, string type) => $"{Prefix}.{Token(to)}.{Token(from)}.{TypeToken(type)}";

    /// <summary>Everything addressed to <paramref name="domain"/> (its inbound stream's subjects).</summary>
    public static string Inbound(string domain) => $"{Prefix}.{Token(domain)}.>";

    /// <summary>Everything <paramref name="domain"/> may publish (its NATS user's publish permission).</summary>
    public static string Outbound(string domain) => $"{Prefix}.*.{Token(domain)}.>";

    /// <summary>The JetStream stream that holds a domain's inbound messages.</summary>
    public static string Stream(string domain) => "MESHBUS_" + Token(domain);

    /// <summary>Splits a bridge subject into its (to, from, type) tokens; false for anything else.</summary>
    public static bool TryParse(string subject, out string toToken, out string fromToken, out string type)
    {
        toToken = fromToken = type = "";
        var parts = subject.Split('.');
        if (parts.Length != 4 || parts[0] != Prefix || parts.Skip(1).Any(p => p.Length == 0))
        {
            return false;
        }

        (toToken, fromToken, type) = (parts[1], parts[2], parts[3]);
        return true;
    }

    private static string TypeToken(string type) =>
        type.Length > 0 && type.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? type
            : throw new ArgumentException($"message type '{type}' is not a subject token", nameof(type));
}
