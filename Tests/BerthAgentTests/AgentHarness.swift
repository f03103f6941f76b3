#if canImport(Glibc)
import Glibc
#endif
import BerthOS
// The suite helpers every file of this target uses (isRealRoot, builtExecutable, TestFailure).
@_exported import BerthTestSupport
import Foundation
import Testing

/// `berth server` as a user starts it — the control plane, the engine and the node agent in one
/// process — over directories of its own, with an image `test/agent:1` (this machine's busybox)
/// imported into the engine; and kubectl pointed at it.
final class ServerBox: @unchecked Sendable {
    @TaskLocal static var current: ServerBox?

    let base: String
    let berth: String
    let nodeName = "berth-agent-test"
    let image = "test/agent:1"
    let port: Int
    /// The agent's HTTPS API (logs, exec, attach), on a port of its own.
    let kubeletPort: Int
    /// The pods' cgroups, under a parent of this box's own (removed at tear-down).
    let cgroupRoot: String
    private var server: pid_t = 0

    /// Arguments added to `berth server`'s (a suite's own agent settings); `{base}` in one is the box's
    /// directory (`{base}/manifests` exists, for static pods).
    let extraArguments: [String]

    init(extraArguments: [String] = []) throws {
        self.extraArguments = extraArguments
        base = NSTemporaryDirectory() + "berth-agent-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        berth = builtExecutable("berth")
        cgroupRoot = "/" + FileSystem.parent(of: base + "/x").split(separator: "/").last! + "/kubepods"
        for sub in ["server", "engine", "run", "agent", "logs", "manifests"] {
            try FileManager.default.createDirectory(atPath: "\(base)/\(sub)", withIntermediateDirectories: true)
        }
        port = Int(freeLocalPort())
        kubeletPort = Int(freeLocalPort())
        try importImage()
        try start()
    }

    var environment: [String] {
        ["BERTH_RUN=\(base)/run", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=\(base)"]
    }

    private func importImage() throws {
        let tar = try busyboxLayer(
            in: base,
            files: ["/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "/www/index.html": "served by a pod\n"])
        let imported = try ChildProcess.run(
            berth, arguments: [berth, "image", "import", "--root", base + "/engine", tar, "--tag", image],
            environment: environment)
        guard imported.status.succeeded else { throw TestFailure("image import: \(imported.stderrText)") }
    }

    private func start() throws {
        let output = try BerthOS.Pipe()
        let logFile = open(base + "/server.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        defer { close(logFile) }
        server = try ChildProcess.spawn(
            berth,
            arguments: [
                berth, "server", "--data-dir", base + "/server", "--listen", "127.0.0.1:\(port)",
                "--root", base + "/engine", "--agent-root", base + "/agent", "--pod-log-dir", base + "/logs",
                "--node-name", nodeName, "--node-monitor-grace-seconds", "40", "--cgroup-root", cgroupRoot,
                "--kubelet-port", String(kubeletPort),
            ] + extraArguments.map { $0.replacingOccurrences(of: "{base}", with: base) },
            environment: environment, fileDescriptors: [1: output.writing.rawValue, 2: logFile])
        output.writing.close()
        try awaitOutput(output.reading, containing: "ready ", seconds: 60, what: "berth server") { log() }
    }

    func log() -> String { (try? FileSystem.readString(base + "/server.log")) ?? "" }

    /// What a failed expectation about pods should show: the pods and their events as `kubectl describe`
    /// prints them, the node's conditions, and the server's log (a test that only printed the log left
    /// a pod that never ran without a reason).
    func diagnostics() -> String {
        let pods = (try? kubectl(["describe", "pods"]).stdoutText) ?? "(kubectl describe pods failed)"
        let conditions =
            (try? get(
                "node/\(nodeName)", "{range .status.conditions[*]}{.type}={.status} {.message}{\"\\n\"}{end}"))
            ?? ""
        return "pods:\n\(pods)\nnode conditions:\n\(conditions)\nserver log:\n\(log().suffix(8000))"
    }

    /// The server killed outright (no shutdown at all: a crash, an OOM kill) and started again on the
    /// same directories and ports; the pods' containers live on in their monitors meanwhile.
    func crashAndRestart() throws {
        if server > 0 {
            kill(server, SIGKILL)
            _ = try? ChildProcess.wait(server)
            server = 0
        }
        try start()
    }

    /// kubectl against the server.
    @discardableResult
    func kubectl(_ arguments: [String], input: String = "", environment extra: [String] = []) throws
        -> ChildProcess.Output
    {
        try ChildProcess.run(
            "/usr/bin/kubectl",
            arguments: ["kubectl", "--kubeconfig", base + "/server/admin.kubeconfig"] + arguments,
            environment: environment + extra, input: Array(input.utf8))
    }

    /// A jsonpath of an object, trimmed.
    func get(_ object: String, _ path: String) throws -> String {
        try kubectl(["get", object, "-o", "jsonpath=\(path)"]).stdoutText
    }

    /// Polls until `condition` holds (pod states have no event a test can await short of a watch).
    func eventually(_ seconds: Double = 60, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    /// Deletes every pod (the agent stops their containers), stops the server, removes what is left.
    func tearDown() {
        _ = try? kubectl(["delete", "pods", "--all", "--wait=true", "--timeout=60s", "--grace-period=1"])
        if server > 0 {
            kill(server, SIGTERM)
            _ = try? ChildProcess.wait(server)
        }
        // The service proxy's table stays when its agent stops (as kube-proxy's rules do, so a restart
        // drops no traffic); the box made it, the box removes it.
        if let nft = ChildProcess.lookup("nft", path: "/usr/sbin:/sbin") {
            for table in ["berth-proxy", "berth-policy"] {
                _ = try? ChildProcess.run(nft, arguments: ["nft", "delete", "table", "ip", table], environment: [])
            }
        }
        // The node's pod network bridge (on its pod CIDR) and VXLAN device are the box's too.
        for link in ["berth-pods", "berth-vxlan"] where FileSystem.exists("/sys/class/net/\(link)") {
            _ = try? ChildProcess.run("/usr/sbin/ip", arguments: ["ip", "link", "delete", link], environment: [])
        }
        // So does the cluster DNS's interface (the kube-dns address, on the node).
        if FileSystem.exists("/sys/class/net/berth-dns") {
            _ = try? ChildProcess.run(
                "/usr/sbin/ip", arguments: ["ip", "link", "delete", "berth-dns"], environment: [])
        } else if let addresses = try? ChildProcess.run(
            "/usr/sbin/ip", arguments: ["ip", "-4", "addr", "show", "dev", "lo"], environment: []),
            addresses.stdoutText.contains("inet 10.96.0.10/32")
        {
            _ = try? ChildProcess.run(
                "/usr/sbin/ip", arguments: ["ip", "addr", "del", "10.96.0.10/32", "dev", "lo"], environment: [])
        }
        // Whatever the agent left (a failed test): the engine's CLI removes its containers.
        if let ids = try? ChildProcess.run(
            berth, arguments: [berth, "ps", "-aq", "--no-trunc", "--root", base + "/engine"], environment: environment
        ).stdoutText.split(separator: "\n").map(String.init), !ids.isEmpty {
            _ = try? ChildProcess.run(
                berth, arguments: [berth, "rm", "-f", "--root", base + "/engine"] + ids, environment: environment)
        }
        removeLeftovers(directory: base, cgroupParent: FileSystem.parent(of: cgroupRoot))
    }
}

/// What a harness leaves when its processes are gone: mounts under `directory`, the pods' cgroups
/// under `cgroupParent` (removed deepest first; rmdir refuses a cgroup that still has processes, so
/// nothing live is touched), and the directory.
func removeLeftovers(directory: String, cgroupParent: String) {
    let mounts = (try? FileSystem.readString("/proc/self/mountinfo")) ?? ""
    for line in mounts.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if fields.count > 4, fields[4].hasPrefix(directory) { umount2(String(fields[4]), Int32(MNT_DETACH)) }
    }
    for controller in (try? FileSystem.listDirectory("/sys/fs/cgroup")) ?? [] {
        let cgroup = "/sys/fs/cgroup/\(controller)\(cgroupParent)"
        guard FileSystem.isDirectory(cgroup) else { continue }
        _ = try? ChildProcess.run(
            "/usr/bin/find", arguments: ["find", cgroup, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"],
            environment: [])
    }
    try? FileManager.default.removeItem(atPath: directory)
}

/// One server for a suite, made before its tests and torn down after them all.
struct ServerScope: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }
    var arguments: [String] = []

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard isRealRoot else { return try await function() }
        let box = try ServerBox(extraArguments: arguments)
        defer { box.tearDown() }
        try await ServerBox.$current.withValue(box) { try await function() }
    }
}

extension Trait where Self == ServerScope {
    static var berthServer: Self { ServerScope() }
    /// A server with arguments of the suite's own.
    static func berthServer(_ arguments: [String]) -> Self { ServerScope(arguments: arguments) }
}
