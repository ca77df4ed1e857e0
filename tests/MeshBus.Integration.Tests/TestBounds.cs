// Every async test has a bound: a hung test fails alone (see MeshBus.TestSupport.BoundedTestFramework).
[assembly: Xunit.TestFramework("MeshBus.TestSupport.BoundedTestFramework", "MeshBus.TestSupport")]
