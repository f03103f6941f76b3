#if canImport(Glibc)
import Glibc
#endif
@testable import BerthEngine
import BerthImage
import BerthOCI
import BerthOS

/// A host every spec test sees the same: x86_64, kernel 6.1, cgroup v1, 40 capabilities, 2 CPUs.
let specTestHost = HostFacts(
    lastCapability: 40, unifiedCgroups: false, kernel: .init(6, 1), architecture: "amd64",
    cpuCount: 2)

/// A fresh directory under /tmp, removed when the value goes away.
final class SpecScratchDirectory {
    let path: String
    init(_ name: String = "spec") {
        var template = Array("/tmp/berth-\(name)-XXXXXX".utf8CString)
        precondition(mkdtemp(&template) != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    deinit { try? FileSystem.removeTree(path) }

    func write(_ relative: String, _ contents: String) {
        try! FileSystem.makeDirectories(FileSystem.parent(of: path + "/" + relative))
        try! FileSystem.writeAtomically(path + "/" + relative, Array(contents.utf8))
    }
}

/// A root file system with a root user, `app` (1000:1000, also in group `extra` 1001) and `nobody`.
func makeSpecRootfs() -> SpecScratchDirectory {
    let root = SpecScratchDirectory("rootfs")
    root.write(
        "etc/passwd",
        """
        root:x:0:0:root:/root:/bin/sh
        app:x:1000:1000:App:/home/app:/bin/sh
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin

        """)
    root.write(
        "etc/group",
        """
        root:x:0:
        app:x:1000:
        extra:x:1001:app,other
        # comment:x:7:app
        nogroup:x:65534:

        """)
    return root
}

/// Inputs for `request` over `image` in `rootfs`, with the engine's usual choices.
func specInputs(
    _ request: ContainerConfiguration, image: ImageConfig.ContainerConfig? = nil,
    rootfs: String, configure: (inout SpecInputs) -> Void = { _ in }
) -> SpecInputs {
    var inputs = SpecInputs(
        configuration: request, image: image, containerID: "0123456789abcdef", rootfs: rootfs,
        hostname: "0123456789ab", cgroupsPath: "/berth/0123456789abcdef")
    configure(&inputs)
    return inputs
}

func imageConfig(
    entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String]? = nil, user: String? = nil,
    workingDir: String? = nil
) -> ImageConfig.ContainerConfig {
    var config = ImageConfig.ContainerConfig()
    config.Entrypoint = entrypoint
    config.Cmd = cmd
    config.Env = env
    config.User = user
    config.WorkingDir = workingDir
    return config
}

/// The reason of an `.invalidArgument`, or a description of whatever else was thrown.
func invalidReason(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as EngineError {
        if case .invalidArgument(_, let reason) = error { return reason }
        return "\(error)"
    } catch {
        return "\(error)"
    }
}
