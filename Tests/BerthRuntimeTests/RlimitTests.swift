#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import BerthRuntime

@Suite(.serialized) struct RlimitTests {
    @Test func everyRlimitNameMapsToItsNumber() throws {
        #expect(RlimitPlan.resources.count == 16)
        let plan = try RlimitPlan(RlimitPlan.resources.map { Spec.Rlimit(type: $0.name, hard: 10, soft: 5) })
        #expect(plan.limits.map(\.resource) == Array(0...15))
        #expect(plan.limits[7].name == "RLIMIT_NOFILE" && plan.limits[7].resource == Int32(RLIMIT_NOFILE.rawValue))
        #expect(plan.limits[4].resource == Int32(RLIMIT_CORE.rawValue))
        #expect(try RlimitPlan(nil).limits.isEmpty)
    }

    @Test func invalidEntriesNameTheirField() {
        #expect(
            invalidField {
                _ = try RlimitPlan([
                    Spec.Rlimit(type: "RLIMIT_CORE", hard: 1, soft: 1),
                    Spec.Rlimit(type: "RLIMIT_FOO", hard: 1, soft: 1),
                ])
            }
                == "process.rlimits[1].type")
        #expect(
            invalidField { _ = try RlimitPlan([Spec.Rlimit(type: "NOFILE", hard: 1, soft: 1)]) }
                == "process.rlimits[0].type")
        #expect(
            invalidField { _ = try RlimitPlan([Spec.Rlimit(type: "RLIMIT_CORE", hard: 1, soft: 2)]) }
                == "process.rlimits[0].soft")
        #expect(
            invalidField {
                _ = try RlimitPlan([
                    Spec.Rlimit(type: "RLIMIT_CORE", hard: 1, soft: 1),
                    Spec.Rlimit(type: "RLIMIT_CORE", hard: 2, soft: 2),
                ])
            }
                == "process.rlimits[1].type")
    }

    @Test func applyLowersTheSoftLimit() throws {
        let resource = Int32(RLIMIT_CORE.rawValue)
        let before = RlimitPlan.current(resource)
        defer { try? RlimitPlan([Spec.Rlimit(type: "RLIMIT_CORE", hard: before.hard, soft: before.soft)]).apply() }
        try RlimitPlan([Spec.Rlimit(type: "RLIMIT_CORE", hard: before.hard, soft: 0)]).apply()
        #expect(RlimitPlan.current(resource) == (0, before.hard))
    }

    @Test func raisingAHardLimitWithoutCapSysResourceNamesTheRlimit() throws {
        let before = RlimitPlan.current(Int32(RLIMIT_NOFILE.rawValue))
        let caps = try ProcessIdentity.currentCapabilities()
        let hasSysResource = caps.effective & (1 << UInt64(Capability.sysResource.rawValue)) != 0
        guard before.hard != UInt64.max, !hasSysResource else { return }  // would succeed: nothing to check
        do {
            try RlimitPlan([Spec.Rlimit(type: "RLIMIT_NOFILE", hard: before.hard + 1, soft: before.soft)]).apply()
            Issue.record("raising the hard limit should have failed")
        } catch {
            #expect("\(error)".contains("RLIMIT_NOFILE") && "\(error)".contains("EPERM"))
        }
        #expect(RlimitPlan.current(Int32(RLIMIT_NOFILE.rawValue)) == before)
    }
}
