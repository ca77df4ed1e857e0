using System.Security.Cryptography;
using System.Text;

namespace MeshBus.Contracts;

/// <summary>
/// The queue an agent reads its grants, denials and halts from, derived from its verified subject (never from an
/// address the agent supplies): part of the wire contract beside the messages, not of the crypto library. Rule
/// (docs/wire-format.md): <c>agent.</c> + the subject lower-cased with every character
/// outside <c>[a-z0-9.-]</c> replaced by <c>-</c>, cut to 96 characters, + <c>.</c> + the first 8 hex digits of
/// SHA-256(subject) so two subjects that sanitize alike never share a queue.
/// </summary>
public static class AgentQueue
{
    /// <summary>The queue name for an agent subject.</summary>
    public static string Name(string agentSubject)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(agentSubject);
        var sb = new StringBuilder("agent.");
        foreach (var c in agentSubject.ToLowerInvariant())
        {
            sb.Append(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '-' ? c : '-');
            if (sb.Length >= 6 + 96)
            {
                break;
            }
        }

        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(agentSubject));
        return sb.Append('.').Append(Convert.ToHexStringLower(hash, 0, 4)).ToString();
    }

    /// <summary>The MassTransit send address (<c>queue:NAME</c>) for an agent subject.</summary>
    public static Uri Address(string agentSubject) => new("queue:" + Name(agentSubject));
}
