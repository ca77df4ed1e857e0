using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace MeshBus.TestSupport;

/// <summary>
/// xUnit 2's test framework with a bound on every async test: an async test case without its own <c>Timeout</c> gets
/// <see cref="DefaultTimeoutMs"/>, so a hung test fails alone ("Test execution time exceeded") instead of hanging the
/// run. Enabled per test assembly with
/// <c>[assembly: Xunit.TestFramework("MeshBus.TestSupport.BoundedTestFramework", "MeshBus.TestSupport")]</c>.
/// xUnit 2.9 honours <c>XunitTestCase.Timeout</c> at run time; its setter is protected, so it is set by reflection.
/// </summary>
public sealed class BoundedTestFramework(IMessageSink messageSink) : XunitTestFramework(messageSink)
{
    /// <summary>The bound of a test that sets none (overridable with <c>MESH_TEST_TIMEOUT_SECONDS</c>).</summary>
    public static int DefaultTimeoutMs { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("MESH_TEST_TIMEOUT_SECONDS"), out var s) && s > 0 ? s * 1000 : 300_000;

    private static readonly PropertyInfo TimeoutProperty = typeof(XunitTestCase).GetProperty(nameof(XunitTestCase.Timeout))!;

    /// <inheritdoc />
    protected override ITestFrameworkExecutor CreateExecutor(AssemblyName assemblyName) =>
        new Executor(assemblyName, SourceInformationProvider, DiagnosticMessageSink);

    private static IXunitTestCase Bound(IXunitTestCase testCase)
    {
        // xUnit 2.9 refuses a timeout on a synchronous test ("only supported for async tests"): only async methods
        // (the ones that can wait on I/O, where hangs happen) get the bound.
        if (testCase is XunitTestCase x && x.Timeout == 0 && x.SkipReason is null
            && x.Method is IReflectionMethodInfo m && m.MethodInfo.GetCustomAttribute<System.Runtime.CompilerServices.AsyncStateMachineAttribute>() is not null)
        {
            TimeoutProperty.SetValue(x, DefaultTimeoutMs);
        }

        return testCase;
    }

    private sealed class Executor(AssemblyName assemblyName, ISourceInformationProvider source, IMessageSink diagnostics)
        : XunitTestFrameworkExecutor(assemblyName, source, diagnostics)
    {
        protected override void RunTestCases(IEnumerable<IXunitTestCase> testCases, IMessageSink executionMessageSink, ITestFrameworkExecutionOptions executionOptions) =>
            base.RunTestCases(testCases.Select(Bound).ToList(), executionMessageSink, executionOptions);
    }
}
