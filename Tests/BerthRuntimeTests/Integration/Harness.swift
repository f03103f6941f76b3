#if canImport(Glibc)
import Glibc
#endif
import BerthOS
@testable import BerthRuntime
import CBerthShim
import FoundationEssentials
import Testing

/// Real root: uid 0 in the initial user namespace. Suites that run containers are gated on it.
let isRealRoot: Bool = {
    guard getuid() == 0, let map = try? FileSystem.readString("/proc/self/uid_map") else { return false }
    let fields = map.split(whereSeparator: { $0 == " " || $0 == "\n" })
    return fields.count >= 3 && fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295"
}()

let hasBusybox = FileSystem.exists("/bin/busybox")

/// The berth-runtime binary built beside the test bundle (or $BERTH_RUNTIME).
let runtimeBinary: String = {
    if let path = getenv("BERTH_RUNTIME") { return String(cString: path) }
    let exe = (try? FileSystem.realPath("/proc/self/exe")) ?? ""
    var directory = FileSystem.parent(of: exe)
    // swift-testing may run from inside BerthPackageTests.xctest.
    while !directory.isEmpty && directory != "/" {
        let candidate = directory + "/berth-runtime"
        if FileSystem.exists(candidate) && !FileSystem.isDirectory(candidate) { return candidate }
        directory = FileSystem.parent(of: directory)
    }
    return "berth-runtime"
}()

/// A command's result.
struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program with arguments, capturing stdout and stderr; `extraFds` maps a child fd to an open fd.
///
/// Output goes to files, not pipes: after `create` or `run --detach` the container keeps the runtime's
/// stdio open, so waiting for end-of-file would wait for the container. The runtime's own exit is the event.
func execute(
    _ arguments: [String], stdin: String? = nil, extraFds: [(child: Int32, parent: Int32)] = [],
    environment: [String]? = nil
) -> Output {
    var template = Array("/tmp/berth-test-output-XXXXXX".utf8CString)
    let outFd = mkstemp(&template)
    let outPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    var errTemplate = Array("/tmp/berth-test-output-XXXXXX".utf8CString)
    let errFd = mkstemp(&errTemplate)
    let errPath = errTemplate.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    defer { unlink(outPath); unlink(errPath); close(outFd); close(errFd) }
    let input = try! Pipe()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input.reading.rawValue, 0)
    posix_spawn_file_actions_adddup2(&actions, outFd, 1)
    posix_spawn_file_actions_adddup2(&actions, errFd, 2)
    for (child, parent) in extraFds { posix_spawn_file_actions_adddup2(&actions, parent, child) }
    var pid: pid_t = 0
    let env = environment ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    let result = withCStringArray(arguments) { argv in
        withCStringArray(env) { envp in
            posix_spawnp(
                &pid, arguments[0], &actions, nil, UnsafeMutablePointer(mutating: argv),
                UnsafeMutablePointer(mutating: envp))
        }
    }
    precondition(result == 0, "posix_spawn \(arguments[0]): \(result)")
    input.reading.close()
    if let stdin { try? input.writing.write(stdin) }
    input.writing.close()
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let stdout = (try? FileSystem.readString(outPath)) ?? ""
    let stderr = (try? FileSystem.readString(errPath)) ?? ""
    return Output(status: Runtime.exitCode(status), stdout: stdout, stderr: stderr)
}

/// A fresh state root and bundles for one test; everything it made is removed at the end.
final class Sandbox {
    let root: String
    let directory: String
    let prefix: String
    private var containers: [String] = []

    init(_ name: String) {
        let token = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        prefix = "bt-\(name)-\(token)"
        directory = "/tmp/berth-test-\(name)-\(token)"
        root = directory + "/state"
        try! FileSystem.makeDirectories(directory)
    }

    deinit {
        for id in containers { _ = runtime(["delete", "--force", id]) }
        try? FileSystem.removeTree(directory)
    }

    /// A container id unique to this test.
    func id(_ suffix: String = "c") -> String {
        let id = "\(prefix)-\(suffix)"
        containers.append(id)
        return id
    }

    /// berth-runtime with this sandbox's --root.
    @discardableResult
    func runtime(
        _ arguments: [String], stdin: String? = nil, extraFds: [(child: Int32, parent: Int32)] = [],
        binary: String = runtimeBinary
    ) -> Output {
        execute([binary, "--root", root] + arguments, stdin: stdin, extraFds: extraFds)
    }

    /// A busybox bundle running `script` with sh -c; `configure` adjusts config.json.
    func bundle(_ name: String = "bundle", script: String, configure: (inout Spec) -> Void = { _ in }) -> String {
        let path = directory + "/" + name
        let rootfs = path + "/rootfs"
        if !FileSystem.exists(rootfs + "/bin/busybox") {
            try! FileSystem.makeDirectories(rootfs + "/bin")
            for dir in ["proc", "sys", "dev", "etc", "tmp", "root"] {
                try! FileSystem.makeDirectories(rootfs + "/" + dir)
            }
            let busybox = try! FileSystem.readFile("/bin/busybox")
            try! FileSystem.writeAtomically(rootfs + "/bin/busybox", busybox, mode: 0o755)
            let applets = execute(["/bin/busybox", "--list"]).stdout.split(separator: "\n")
            for applet in applets where applet != "busybox" { symlink("busybox", rootfs + "/bin/" + applet) }
            try! FileSystem.writeAtomically(
                rootfs + "/etc/passwd", Array("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n".utf8))
            try! FileSystem.writeAtomically(rootfs + "/etc/group", Array("root:x:0:\nnobody:x:65534:\n".utf8))
        }
        var spec = DefaultSpec.make()
        spec.process?.terminal = false
        spec.process?.args = ["/bin/sh", "-c", script]
        configure(&spec)
        writeConfig(spec, bundle: path)
        return path
    }

    func writeConfig(_ spec: Spec, bundle: String) {
        let bytes = try! JSONEncoder().encode(spec)
        try! FileSystem.writeAtomically(bundle + "/config.json", Array(bytes))
    }

    /// Runs `script` in a fresh container and returns what it printed.
    func probe(_ script: String, configure: (inout Spec) -> Void = { _ in }) -> Output {
        let path = bundle(
            "probe-" + String(UInt32.random(in: 0..<UInt32.max), radix: 36), script: script, configure: configure)
        return runtime(["run", "--bundle", path, id(String(UInt32.random(in: 0..<UInt32.max), radix: 36))])
    }

    func state(_ id: String) -> StateReport? {
        let output = runtime(["state", id])
        guard output.status == 0 else { return nil }
        return try? JSONDecoder().decode(StateReport.self, from: Data(output.stdout.utf8))
    }
}

/// Waits for a process that is not our child to exit, through a pidfd (an event, not a sleep).
func waitForExit(pid: Int32, timeoutMilliseconds: Int32 = 10_000) -> Bool {
    let fd = berth_pidfd_open(pid, 0)
    if fd < 0 { return errno == ESRCH }
    defer { close(fd) }
    var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&poller, 1, timeoutMilliseconds) == 1
}

/// Host mounts whose mount point lies under `path`. Other suites mount and unmount beside a test, so
/// leftovers are looked for under the test's own directory, not by counting every mount.
func mounts(under path: String) -> [String] {
    ((try? FileSystem.readString("/proc/self/mountinfo")) ?? "").split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ")
        return fields.count > 4 && fields[4].hasPrefix(path) ? String(fields[4]) : nil
    }
}
