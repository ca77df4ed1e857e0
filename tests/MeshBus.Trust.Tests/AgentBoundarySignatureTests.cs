using System.Text;
using MeshBus.Contracts;

namespace MeshBus.Trust.Tests;

/// <summary>Execution report signatures and the signed denials and halts agents act on (docs/wire-format.md).</summary>
public sealed class AgentBoundarySignatureTests
{
    private static readonly Guid IntentId = Guid.Parse("3f2c8a4e-9b1d-4c6e-8a2f-5d7e9c1b0a64");
    private const string Agent = "acme.example/prod/agents/deployer";

    [Fact]
    public void The_signed_bytes_of_a_report_are_the_ones_the_wire_format_document_shows()
    {
        var started = new ExecutionStarted(IntentId, "acme.example/prod", Agent, "grant-3f2c8a4e", TestDomain.Now);

        Assert.Equal(
            """{"agent":"acme.example/prod/agents/deployer","domain":"acme.example/prod","grantId":"grant-3f2c8a4e","intentId":"3f2c8a4e-9b1d-4c6e-8a2f-5d7e9c1b0a64","startedAt":1795694400000,"type":"ExecutionStarted"}""",
            Encoding.UTF8.GetString(ExecutionReportSignature.SignedBytes(started)));
    }

    [Fact]
    public void A_report_verifies_with_its_agents_key_and_with_no_other_nor_after_any_change()
    {
        var (priv, pub) = TestDomain.AgentKey();
        var (_, other) = TestDomain.AgentKey();
        var halted = ExecutionReportSignature.Sign(new ExecutionHalted(IntentId, "acme.example/prod", Agent, GovernanceReason.OperatorHalt, "stop", TestDomain.Now.AddTicks(1234), Guid.NewGuid()), priv);

        Assert.True(ExecutionReportSignature.Verify(halted, pub));
        Assert.False(ExecutionReportSignature.Verify(halted, other));
        Assert.False(ExecutionReportSignature.Verify(halted with { Reason = GovernanceReason.LeaseExpired }, pub));
        Assert.False(ExecutionReportSignature.Verify(halted with { IntentId = Guid.NewGuid() }, pub));
        Assert.False(ExecutionReportSignature.Verify(halted with { Signature = null }, pub));
        // a heartbeat's signature is not a completion's: the type is signed
        var heartbeat = ExecutionReportSignature.Sign(new ExecutionHeartbeat(IntentId, "acme.example/prod", Agent, 1, TestDomain.Now), priv);
        Assert.False(ExecutionReportSignature.Verify(new ExecutionCompleted(IntentId, "acme.example/prod", Agent, TestDomain.Now, null) { Signature = heartbeat.Signature }, pub));
    }

    [Fact]
    public void A_denial_verifies_only_with_the_domains_grant_key_and_only_as_signed()
    {
        var domain = new TestDomain();
        var denial = new GrantDenied(IntentId, domain.Name, Agent, GovernanceReason.PolicyRevoked, "renewal denied", 12, []);
        var signed = AgentNotices.Sign(denial, domain.Signers[KeyUsage.Grant], TestDomain.Now);

        Assert.True(AgentNotices.Verify(signed, Agent, domain.Trust, TestDomain.Now).IsValid);
        Assert.False(AgentNotices.Verify(denial, Agent, domain.Trust, TestDomain.Now).IsValid);
        Assert.False(AgentNotices.Verify(signed, "acme.example/prod/agents/other", domain.Trust, TestDomain.Now).IsValid);
        Assert.False(AgentNotices.Verify(signed with { Reason = GovernanceReason.Quarantined }, Agent, domain.Trust, TestDomain.Now).IsValid);
        Assert.False(AgentNotices.Verify(signed with { LineageIndex = null }, Agent, domain.Trust, TestDomain.Now).IsValid);
        Assert.False(AgentNotices.Verify(signed with { IntentId = Guid.NewGuid() }, Agent, domain.Trust, TestDomain.Now).IsValid);
        var foreign = AgentNotices.Sign(denial, Ed25519Signer.Generate(KeyUsage.Grant), TestDomain.Now);
        Assert.False(AgentNotices.Verify(foreign, Agent, domain.Trust, TestDomain.Now).IsValid);
        Assert.Throws<ArgumentException>(() => AgentNotices.Sign(denial, domain.Signers[KeyUsage.Credential], TestDomain.Now));
    }

    [Fact]
    public void A_halt_token_is_not_a_denial_token_nor_a_grant()
    {
        var domain = new TestDomain();
        var halt = new HaltExecution(Guid.NewGuid(), domain.Name, GovernanceScope.Execution, IntentId.ToString(), GovernanceReason.OperatorHalt, "stop", TestDomain.Now) { IntentId = IntentId };
        var signed = AgentNotices.Sign(halt, domain.Signers[KeyUsage.Grant], TestDomain.Now);
        var denial = AgentNotices.Sign(new GrantDenied(IntentId, domain.Name, Agent, GovernanceReason.OperatorHalt, "x", null, []), domain.Signers[KeyUsage.Grant], TestDomain.Now);

        Assert.True(AgentNotices.Verify(signed, domain.Trust, TestDomain.Now).IsValid);
        Assert.False(AgentNotices.Verify(halt with { Token = denial.Token }, domain.Trust, TestDomain.Now).IsValid);
        Assert.False(AgentNotices.Verify(signed with { Scope = GovernanceScope.Agent, Subject = Agent }, domain.Trust, TestDomain.Now).IsValid);
        Assert.Equal(GovernanceReason.SignatureInvalid, Grants.Verify(signed.Token!, new GrantVerificationOptions
        {
            Audience = domain.Name,
            AgentPublicKey = new byte[32],
            KeyResolver = domain.Trust,
            Now = TestDomain.Now,
        }).Reason);
    }
}
