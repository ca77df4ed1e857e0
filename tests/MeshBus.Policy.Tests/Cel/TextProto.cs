using System.Globalization;
using System.Text;

namespace MeshBus.Policy.Tests.Cel;

/// <summary>
/// A protobuf text-format message read without a schema: each field is a scalar token (string bytes, number or enum
/// name) or a nested message. Enough for google/cel-spec's conformance files (simple.proto).
/// </summary>
public sealed class TextProto
{
    public List<(string Name, object Value)> Fields { get; } = [];

    public IEnumerable<TextProto> Messages(string name) => Fields.Where(f => f.Name == name && f.Value is TextProto).Select(f => (TextProto)f.Value);

    public TextProto? Message(string name) => Messages(name).FirstOrDefault();

    public bool Has(string name) => Fields.Any(f => f.Name == name);

    /// <summary>A scalar: <see cref="byte"/>[] for quoted strings, <see cref="string"/> for other tokens.</summary>
    public object? Scalar(string name) => Fields.Where(f => f.Name == name && f.Value is not TextProto).Select(f => f.Value).FirstOrDefault();

    public string? String(string name) => Scalar(name) switch
    {
        byte[] b => Encoding.UTF8.GetString(b),
        string s => s,
        _ => null,
    };

    public static TextProto Parse(string text)
    {
        var reader = new Reader(text);
        var message = reader.ParseFields(endChar: null);
        return message;
    }

    private sealed class Reader(string text)
    {
        private int _pos;

        public TextProto ParseFields(char? endChar)
        {
            var m = new TextProto();
            while (true)
            {
                SkipSpace();
                if (_pos >= text.Length)
                {
                    if (endChar is not null)
                    {
                        throw new FormatException("unexpected end of text proto");
                    }

                    return m;
                }

                if (endChar is not null && text[_pos] == endChar)
                {
                    _pos++;
                    return m;
                }

                string name;
                if (text[_pos] == '[')
                {
                    var end = text.IndexOf(']', _pos);
                    name = text[_pos..(end + 1)];
                    _pos = end + 1;
                }
                else
                {
                    name = Token();
                }

                SkipSpace();
                var colon = false;
                if (text[_pos] == ':')
                {
                    colon = true;
                    _pos++;
                    SkipSpace();
                }

                if (text[_pos] is '{' or '<')
                {
                    var close = text[_pos] == '{' ? '}' : '>';
                    _pos++;
                    m.Fields.Add((name, ParseFields(close)));
                }
                else if (text[_pos] == '[' && colon)
                {
                    _pos++;
                    while (true)
                    {
                        SkipSpace();
                        if (text[_pos] == ']')
                        {
                            _pos++;
                            break;
                        }

                        if (text[_pos] == '{')
                        {
                            _pos++;
                            m.Fields.Add((name, ParseFields('}')));
                        }
                        else
                        {
                            m.Fields.Add((name, ScalarValue()));
                        }

                        SkipSpace();
                        if (text[_pos] == ',')
                        {
                            _pos++;
                        }
                    }
                }
                else
                {
                    m.Fields.Add((name, ScalarValue()));
                }

                SkipSpace();
                if (_pos < text.Length && text[_pos] is ',' or ';')
                {
                    _pos++;
                }
            }
        }

        private object ScalarValue()
        {
            if (text[_pos] is '"' or '\'')
            {
                var bytes = new List<byte>();
                while (_pos < text.Length && text[_pos] is '"' or '\'')
                {
                    bytes.AddRange(QuotedString());
                    SkipSpace();
                }

                return bytes.ToArray();
            }

            return Token();
        }

        private string Token()
        {
            var start = _pos;
            while (_pos < text.Length && (char.IsLetterOrDigit(text[_pos]) || text[_pos] is '_' or '.' or '-' or '+'))
            {
                _pos++;
            }

            if (start == _pos)
            {
                throw new FormatException($"unexpected '{text[_pos]}' at {_pos}");
            }

            return text[start.._pos];
        }

        private byte[] QuotedString()
        {
            var quote = text[_pos++];
            var bytes = new List<byte>();
            while (text[_pos] != quote)
            {
                var c = text[_pos++];
                if (c != '\\')
                {
                    if (char.IsHighSurrogate(c))
                    {
                        bytes.AddRange(Encoding.UTF8.GetBytes(new[] { c, text[_pos++] }));
                    }
                    else
                    {
                        bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                    }

                    continue;
                }

                var e = text[_pos++];
                switch (e)
                {
                    case 'n': bytes.Add(10); break;
                    case 't': bytes.Add(9); break;
                    case 'r': bytes.Add(13); break;
                    case 'a': bytes.Add(7); break;
                    case 'b': bytes.Add(8); break;
                    case 'f': bytes.Add(12); break;
                    case 'v': bytes.Add(11); break;
                    case '?': bytes.Add((byte)'?'); break;
                    case 'x' or 'X':
                        {
                            var start = _pos;
                            while (_pos < text.Length && _pos - start < 2 && char.IsAsciiHexDigit(text[_pos]))
                            {
                                _pos++;
                            }

                            bytes.Add(byte.Parse(text.AsSpan(start, _pos - start), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                            break;
                        }

                    case 'u' or 'U':
                        {
                            var n = e == 'u' ? 4 : 8;
                            var cp = int.Parse(text.AsSpan(_pos, n), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                            _pos += n;
                            bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(cp)));
                            break;
                        }

                    case >= '0' and <= '7':
                        {
                            var v = e - '0';
                            for (var i = 0; i < 2 && _pos < text.Length && text[_pos] is >= '0' and <= '7'; i++)
                            {
                                v = (v * 8) + (text[_pos++] - '0');
                            }

                            bytes.Add((byte)v);
                            break;
                        }

                    default:
                        bytes.AddRange(Encoding.UTF8.GetBytes(e.ToString()));
                        break;
                }
            }

            _pos++;
            return [.. bytes];
        }

        private void SkipSpace()
        {
            while (_pos < text.Length)
            {
                if (char.IsWhiteSpace(text[_pos]))
                {
                    _pos++;
                }
                else if (text[_pos] == '#')
                {
                    while (_pos < text.Length && text[_pos] != '\n')
                    {
                        _pos++;
                    }
                }
                else
                {
                    return;
                }
            }
        }
    }
}
