import BerthCRIProtocol
import BerthEngine
import Testing

@testable import BerthCRI

/// The CRI → engine translation, without root: containerd's rules where the CRI leaves a choice.
@Suite struct ContainerTranslationTests {
    func sandbox() -> PodSandboxRecord {
        PodSandboxRecord(
            id: "s1", name: "p_ns_uid_0", createdAt: 0, state: .ready, namespacePaths: [:], hostNamespaces: [],
            hostname: "p", cgroupParent: "/kubepods/pod1", logDirectory: "/var/log/pods/x", runtimeHandler: "")
    }

    func config(_ edit: (inout Runtime_V1_ContainerConfig) -> Void = { _ in }) -> Runtime_V1_ContainerConfig {
        var c = Runtime_V1_ContainerConfig()
        c.metadata.name = "app"
        c.image.image = "127.0.0.1:5000/busybox:latest"
        edit(&c)
        return c
    }

    func translate(_ c: Runtime_V1_ContainerConfig) throws -> ContainerConfiguration {
        try ContainerTranslation.configuration(
            c, sandbox: sandbox(), sandboxConfig: Runtime_V1_PodSandboxConfig(), runtime: nil)
    }

    @Test func commandReplacesEntrypointAndDropsTheImageCmd() throws {
        let c = try translate(config { $0.command = ["/bin/sh", "-c"] })
        #expect(c.entrypoint == ["/bin/sh", "-c"])
        #expect(c.cmd == [])
        let args = try translate(config { $0.args = ["x"] })
        #expect(args.entrypoint == nil)
        #expect(args.cmd == ["x"])
    }

    @Test func noSeccompFieldIsUnconfinedAndRuntimeDefaultIsTheEnginesProfile() throws {
        #expect(try translate(config()).securityOpt.contains("seccomp=unconfined"))
        let runtimeDefault = try translate(config { $0.linux.securityContext.seccomp.profileType = .runtimeDefault })
        #expect(!runtimeDefault.securityOpt.contains { $0.hasPrefix("seccomp=") })
        let legacy = try translate(config { $0.linux.securityContext.seccompProfilePath = "runtime/default" })
        #expect(!legacy.securityOpt.contains { $0.hasPrefix("seccomp=") })
        #expect(throws: (any Error).self) {
            try translate(config { $0.linux.securityContext.seccompProfilePath = "weird/profile" })
        }
    }

    @Test func memoryLimitWithoutSwapLimitMeansNoSwap() throws {
        let c = try translate(config { $0.linux.resources.memoryLimitInBytes = 64 << 20 })
        #expect(c.resources.memory == 64 << 20)
        #expect(c.resources.memorySwap == 64 << 20)
    }

    @Test func usersAndGroups() throws {
        let c = try translate(
            config {
                $0.linux.securityContext.runAsUser.value = 1000
                $0.linux.securityContext.runAsGroup.value = 3000
                $0.linux.securityContext.supplementalGroups = [4000, 5000]
            })
        #expect(c.user == "1000:3000")
        #expect(c.groupAdd == ["4000", "5000"])
        #expect(throws: (any Error).self) {
            try translate(config { $0.linux.securityContext.runAsGroup.value = 3000 })
        }
    }

    @Test func missingMetadataOrImageIsInvalidArgument() {
        #expect(throws: (any Error).self) { try translate(config { $0.clearMetadata() }) }
        #expect(throws: (any Error).self) { try translate(config { $0.image.image = "" }) }
    }

    @Test func relativeMountPathsAreRefused() {
        var mount = Runtime_V1_Mount()
        mount.containerPath = "data"
        mount.hostPath = "/tmp"
        #expect(throws: (any Error).self) { try translate(config { $0.mounts = [mount] }) }
    }
}
