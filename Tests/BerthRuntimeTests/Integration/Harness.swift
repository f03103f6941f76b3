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
func execute(_ arguments: [String], stdin: String? = nil, extraFds: [(child: Int32, parent: Int32)] = [],
             environment: [String]? = nil) -> Output {
    let out = try! Pipe(), err = try! Pipe(), input = try! Pipe()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, input.reading.rawValue, 0)
    posix_spawn_file_actions_adddup2(&actions, out.writing.rawValue, 1)
    posix_spawn_file_actions_adddup2(&actions, err.writing.rawValue, 2)
    for (child, parent) in extraFds { posix_spawn_file_actions_adddup2(&actions, parent, child) }
    var pid: pid_t = 0
    let env = environment ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    let result = withCStrings(arguments) { argv in
        withCStrings(env) { envp in
            posix_spawnp(&pid, arguments[0], &actions, nil, UnsafeMutablePointer(mutating: argv), UnsafeMutablePointer(mutating: envp))
        }
    }
    precondition(result == 0, "posix_spawn \(arguments[0]): \(result)")
    input.reading.close(); out.writing.close(); err.writing.close()
    if let stdin { try? input.writing.write(stdin) }
    input.writing.close()
    // Read both pipes without deadlock: stderr is small; read stdout fully first on a poll loop.
    var stdoutBytes: [UInt8] = [], stderrBytes: [UInt8] = []
    var open = [out.reading.rawValue, err.reading.rawValue]
    while !open.isEmpty {
        var polls = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        if poll(&polls, nfds_t(polls.count), -1) < 0 { if errno == EINTR { continue }; break }
        for p in polls where p.revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = read(p.fd, &buffer, buffer.count)
            if n <= 0 { open.removeAll { $0 == p.fd }; continue }
            if p.fd == out.reading.rawValue { stdoutBytes += buffer[0..<n] } else { stderrBytes += buffer[0..<n] }
        }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return Output(status: Runtime.exitCode(status), stdout: String(decoding: stdoutBytes, as: UTF8.self),
                  stderr: String(decoding: stderrBytes, as: UTF8.self))
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
    func runtime(_ arguments: [String], stdin: String? = nil, extraFds: [(child: Int32, parent: Int32)] = [],
                 binary: String = runtimeBinary) -> Output {
        execute([binary, "--root", root] + arguments, stdin: stdin, extraFds: extraFds)
    }

    /// A busybox bundle running `script` with sh -c; `configure` adjusts config.json.
    func bundle(_ name: String = "bundle", script: String, configure: (inout Spec) -> Void = { _ in }) -> String {
        let path = directory + "/" + name
        let rootfs = path + "/rootfs"
        if !FileSystem.exists(rootfs + "/bin/busybox") {
            try! FileSystem.makeDirectories(rootfs + "/bin")
            for dir in ["proc", "sys", "dev", "etc", "tmp", "root"] { try! FileSystem.makeDirectories(rootfs + "/" + dir) }
            let busybox = try! FileSystem.readFile("/bin/busybox")
            try! FileSystem.writeAtomically(rootfs + "/bin/busybox", busybox, mode: 0o755)
            let applets = execute(["/bin/busybox", "--list"]).stdout.split(separator: "\n")
            for applet in applets where applet != "busybox" { symlink("busybox", rootfs + "/bin/" + applet) }
            try! FileSystem.writeAtomically(rootfs + "/etc/passwd", Array("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n".utf8))
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
        let path = bundle("probe-" + String(UInt32.random(in: 0..<UInt32.max), radix: 36), script: script, configure: configure)
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

func mountCount() -> Int {
    ((try? FileSystem.readString("/proc/self/mountinfo")) ?? "").split(separator: "\n").count
}
