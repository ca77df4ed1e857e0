using System.Text;

namespace MeshBus.Trust;

/// <summary>
/// Private key files: written owner-only (mode 0600, directories 0700) and atomically (temp file + rename), and read
/// only when neither group nor others have any access — a key file others can read is treated as compromised
/// configuration and refused with <see cref="KeyFileException"/>.
/// </summary>
public static class KeyFiles
{
    /// <summary>Mode of a private key file (0600).</summary>
    public const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Mode of a directory holding private keys (0700).</summary>
    public const UnixFileMode PrivateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Creates a directory for private keys with mode 0700 (and tightens an existing one).</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        Directory.CreateDirectory(path, PrivateDirectoryMode);
        File.SetUnixFileMode(path, PrivateDirectoryMode);
    }

    /// <summary>Writes a private file with mode 0600, atomically replacing any previous one.</summary>
    public static void WritePrivate(string path, string content)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateFileMode;
        }

        try
        {
            using (var stream = new FileStream(temp, options))
            {
                stream.Write(Encoding.UTF8.GetBytes(content));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Writes a public file atomically (temp file + rename).</summary>
    public static void WritePublic(string path, string content)
    {
        var temp = path + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            File.WriteAllText(temp, content);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    /// <summary>Reads a private file, refusing it when group or others have any permission on it.</summary>
    public static string ReadPrivate(string path)
    {
        if (!File.Exists(path))
        {
            throw new KeyFileException($"key file '{path}' does not exist");
        }

        CheckOwnerOnly(path);
        return File.ReadAllText(path);
    }

    /// <summary>Throws <see cref="KeyFileException"/> when group or others have any permission on <paramref name="path"/>.</summary>
    public static void CheckOwnerOnly(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var mode = File.GetUnixFileMode(path);
        if ((mode & GroupOrOther) != 0)
        {
            throw new KeyFileException($"key file '{path}' is accessible by group or others (mode {Octal(mode)}); refusing to use it. Restrict it with: chmod 600 '{path}' (and consider the key compromised if others could read it)");
        }
    }

    private static string Octal(UnixFileMode mode) => Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0');
}

/// <summary>A key file is missing, malformed, or readable by others.</summary>
public sealed class KeyFileException : IOException
{
    /// <summary>Creates the exception.</summary>
    public KeyFileException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public KeyFileException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
