#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import Testing
@testable import BerthRuntime

/// Real root: uid 0 in the initial user namespace (identity /proc/self/uid_map).
let identityRoot: Bool = {
    guard getuid() == 0, let map = try? FileSystem.readString("/proc/self/uid_map") else { return false }
    return map.split(whereSeparator: { $0 == " " || $0 == "\n" }) == ["0", "0", "4294967295"]
}()

/// Runs `body` on a new pthread and waits for it: per-thread kernel state (capabilities, seccomp,
/// no_new_privs) then dies with the thread and never touches the test runner's threads.
protocol ThreadRunnable: AnyObject { func run() }

final class ThreadBox<T>: ThreadRunnable, @unchecked Sendable {
    let body: () -> T
    var result: T?
    init(_ body: @escaping () -> T) { self.body = body }
    func run() { result = body() }
}

/// Runs `body` on a new pthread and waits for it.
func onDedicatedThread<T>(_ body: @escaping () -> T) -> T {
    let box = ThreadBox(body)
    var thread = pthread_t()
    let context = Unmanaged.passRetained(box as AnyObject).toOpaque()
    let created = pthread_create(
        &thread, nil,
        { raw in
            (Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! any ThreadRunnable).run()
            return nil
        }, context)
    precondition(created == 0)
    pthread_join(thread, nil)
    return box.result!
}

@Suite struct CapabilityTests {
    @Test func tableMatchesTheKernelNumbering() {
        #expect(Capability.allCases.count == 41)
        #expect(Capability.chown.name == "CAP_CHOWN" && Capability.chown.rawValue == 0)
        #expect(Capability(name: "CAP_SYS_ADMIN")?.rawValue == 21)
        #expect(Capability(name: "CAP_AUDIT_READ")?.rawValue == 37)
        #expect(Capability(name: "CAP_CHECKPOINT_RESTORE")?.rawValue == 40)
        #expect(Capability(name: "SYS_ADMIN") == nil)  // runc requires the prefix
        #expect(Capability(name: "cap_sys_admin") == nil)
        for capability in Capability.allCases { #expect(Capability(name: capability.name) == capability) }
    }

    @Test func planBuildsMasksForEachSet() throws {
        let caps = Spec.Capabilities(
            bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"], effective: ["CAP_KILL"],
            inheritable: [], permitted: ["CAP_KILL", "CAP_CHOWN"], ambient: ["CAP_KILL"])
        let plan = try CapabilityPlan(caps, lastCapability: 40)
        #expect(plan.bounding == (1 << 0) | (1 << 5) | (1 << 10))
        #expect(plan.effective == 1 << 5)
        #expect(plan.permitted == (1 << 0) | (1 << 5))
        #expect(plan.inheritable == 0 && plan.ambient == 1 << 5)
        #expect(plan.boundingDrops.count == 41 - 3 && !plan.boundingDrops.contains(5))
        #expect(CapabilityPlan.capabilities(in: plan.permitted) == [.chown, .kill])
        #expect(plan.warnings.isEmpty)
        let empty = try CapabilityPlan(nil, lastCapability: 40)
        #expect(empty.bounding == 0 && empty.boundingDrops.count == 41)
    }

    @Test func unknownNamesAreErrorsNamingTheSetAndIndex() {
        #expect(
            invalidField {
                _ = try CapabilityPlan(Spec.Capabilities(bounding: ["CAP_CHOWN", "CAP_FLY"]), lastCapability: 40)
            }
                == "process.capabilities.bounding[1]")
        #expect(
            invalidField { _ = try CapabilityPlan(Spec.Capabilities(ambient: ["NET_ADMIN"]), lastCapability: 40) }
                == "process.capabilities.ambient[0]")
        do {
            _ = try CapabilityPlan(Spec.Capabilities(effective: ["net_admin"]), lastCapability: 40)
            Issue.record("expected an error")
        } catch { #expect("\(error)".contains("did you mean CAP_NET_ADMIN")) }
    }

    @Test func capabilitiesNewerThanTheKernelAreSkippedWithAWarning() throws {
        let plan = try CapabilityPlan(
            Spec.Capabilities(bounding: ["CAP_BPF", "CAP_CHOWN"], effective: ["CAP_BPF"]), lastCapability: 37)
        #expect(plan.bounding == 1)
        #expect(plan.effective == 0)
        #expect(plan.warnings.count == 1 && plan.warnings[0].contains("CAP_BPF"))
        #expect(plan.boundingDrops.last == 37)
    }

    @Test func lastSupportedReadsTheKernel() throws {
        let text = try FileSystem.readString("/proc/sys/kernel/cap_last_cap")
        #expect(Capability.lastSupported() == Int(text.filter(\.isNumber)))
    }

    @Test(.enabled(if: identityRoot, "needs real root"))
    func setCapabilitiesAndDropBoundingSetOnAThread() throws {
        let plan = try CapabilityPlan(
            Spec.Capabilities(
                bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_SETPCAP"], effective: ["CAP_KILL"],
                inheritable: ["CAP_KILL"], permitted: ["CAP_KILL", "CAP_CHOWN"], ambient: ["CAP_KILL", "CAP_CHOWN"]))
        let outcome: Result<(String, UInt64, UInt64, UInt64, [String]), RuntimeError> = onDedicatedThread {
            do throws(RuntimeError) {
                try ProcessIdentity.dropBoundingSet(plan)
                let warnings = try ProcessIdentity.setCapabilities(plan)
                let now = try ProcessIdentity.currentCapabilities()
                let status = (try? FileSystem.readString("/proc/thread-self/status")) ?? ""
                return .success((status, now.effective, now.permitted, now.inheritable, warnings))
            } catch { return .failure(error) }
        }
        let (status, effective, permitted, inheritable, warnings) = try outcome.get()
        #expect(effective == 1 << 5 && permitted == (1 << 0) | (1 << 5) && inheritable == 1 << 5)
        #expect(status.contains("CapBnd:\t0000000000000121"))  // CHOWN 0, KILL 5, SETPCAP 8
        #expect(status.contains("CapAmb:\t0000000000000020"))  // only KILL: CHOWN is not inheritable
        #expect(warnings.count == 1 && warnings[0].contains("CAP_CHOWN"))
        // The runner's own threads keep their capabilities.
        #expect(try ProcessIdentity.currentCapabilities().effective != 1 << 5)
    }

    @Test func oomScoreAdjustmentOutOfRangeNamesTheField() {
        #expect(invalidField { try ProcessIdentity.setOOMScoreAdjustment(1001) } == "process.oomScoreAdj")
    }

    @Test func oomScoreAdjustmentWritesProcfs() throws {
        let current = Int(try FileSystem.readString("/proc/self/oom_score_adj").filter { $0.isNumber || $0 == "-" })!
        try ProcessIdentity.setOOMScoreAdjustment(current)  // rewriting the current value needs no privilege
        #expect(
            Int(try FileSystem.readString("/proc/self/oom_score_adj").filter { $0.isNumber || $0 == "-" }) == current)
    }
}
