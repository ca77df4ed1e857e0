using BenchmarkDotNet.Running;

// Every benchmark class in this assembly: `dotnet run -c Release --project bench/MeshBus.Benchmarks -- --filter '*Cel*'`.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
