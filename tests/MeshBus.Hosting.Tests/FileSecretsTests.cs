using Microsoft.Extensions.Options;
using Xunit;

namespace MeshBus.Hosting.Tests;

/// <summary>Settings from files (<c>NAME_FILE</c>), as compose mounts secrets.</summary>
public sealed class FileSecretsTests
{
    [Fact]
    public void A_FILE_variable_sets_the_setting_to_the_files_content_without_its_line_break()
    {
        var file = Path.Combine(TestPaths.TempDirectory(), "password");
        File.WriteAllText(file, "s3cret\n");

        var values = FileSecrets.Read(new Dictionary<string, string> { ["RabbitMqTransport__Password_FILE"] = file });

        Assert.Equal("s3cret", values["RabbitMqTransport:Password"]);
    }

    [Fact]
    public void An_unreadable_file_names_its_variable()
    {
        var e = Assert.Throws<OptionsValidationException>(() => FileSecrets.Read(new Dictionary<string, string> { ["Storage__ConnectionString_FILE"] = "/nonexistent/cs" }));
        Assert.Contains(e.Failures, f => f.StartsWith("Storage__ConnectionString_FILE: cannot read /nonexistent/cs", StringComparison.Ordinal));
    }

    [Fact]
    public void A_setting_given_both_plainly_and_as_a_file_is_refused()
    {
        var file = Path.Combine(TestPaths.TempDirectory(), "password");
        File.WriteAllText(file, "s3cret");

        var e = Assert.Throws<OptionsValidationException>(() => FileSecrets.Read(new Dictionary<string, string>
        {
            ["RabbitMqTransport__Password"] = "other",
            ["RabbitMqTransport__Password_FILE"] = file,
        }));
        Assert.Contains(e.Failures, f => f.Contains("RabbitMqTransport__Password and RabbitMqTransport__Password_FILE", StringComparison.Ordinal));
    }

    [Fact]
    public void Variables_of_other_programs_ending_in_FILE_are_left_alone()
    {
        Assert.Empty(FileSecrets.Read(new Dictionary<string, string> { ["HISTFILE"] = "/nonexistent", ["PGPASSFILE"] = "/x", ["SSL_CERT_FILE"] = "/nonexistent" }));
    }
}
