@testable import BerthEngine
import Testing

/// Which containers come back after a reboot: dockerd's restore rules, without root.
@Suite("restart after a reboot")
struct BootRecoveryTests {
    func record(
        _ policy: String, retries: Int = 0, exitCode: Int32 = 255, stoppedByUser: Bool = false, started: Bool = true,
        restarts: Int = 0
    ) -> ContainerRecord {
        var configuration = ContainerConfiguration(image: "img")
        configuration.restartPolicy = .init(name: policy, maximumRetryCount: retries)
        var r = ContainerRecord(
            id: "id", name: "n", created: "", imageReference: "img", imageName: "img", imageID: "",
            configuration: configuration, runtime: "berth", path: "true", args: [], hostname: "h")
        r.state.status = .exited
        r.state.exitCode = exitCode
        r.state.stoppedByUser = stoppedByUser
        r.state.startedAt = started ? "2026-12-03T00:00:00Z" : ""
        r.restartCount = restarts
        return r
    }

    @Test func alwaysComesBackEvenAfterAUserStoppedIt() {
        #expect(Engine.restartsAfterBoot(record("always")))
        #expect(Engine.restartsAfterBoot(record("always", exitCode: 0, stoppedByUser: true)))
    }

    @Test func unlessStoppedComesBackUnlessAUserStoppedIt() {
        #expect(Engine.restartsAfterBoot(record("unless-stopped")))
        #expect(!Engine.restartsAfterBoot(record("unless-stopped", exitCode: 143, stoppedByUser: true)))
    }

    @Test func onFailureComesBackAfterAFailureWithRetriesLeft() {
        #expect(Engine.restartsAfterBoot(record("on-failure")))
        #expect(!Engine.restartsAfterBoot(record("on-failure", exitCode: 0)))
        #expect(Engine.restartsAfterBoot(record("on-failure", retries: 3, restarts: 2)))
        #expect(!Engine.restartsAfterBoot(record("on-failure", retries: 3, restarts: 3)))
        #expect(!Engine.restartsAfterBoot(record("on-failure", exitCode: 137, stoppedByUser: true)))
    }

    @Test func neverStartedOrNoPolicyStaysDown() {
        #expect(!Engine.restartsAfterBoot(record("no")))
        #expect(!Engine.restartsAfterBoot(record("always", started: false)))
        var running = record("always")
        running.state.status = .created
        #expect(!Engine.restartsAfterBoot(running))
    }
}
