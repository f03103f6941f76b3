import BerthAPI
import BerthAgent
import BerthControl
import BerthStore
import Foundation
import ServiceLifecycle
import Testing

/// Output of a finished child process.
struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
    var ok: Bool { status == 0 }
}

/// Runs a program to completion (bounded by `timeout`), feeding `stdin`.
func run(
    _ program: String, _ args: [String], env: [String: String] = [:], stdin: String? = nil,
    timeout: TimeInterval = 120
) throws -> Output {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
    p.arguments = program.hasPrefix("/") ? args : [program] + args
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out; p.standardError = err; p.standardInput = inp
    try p.run()
    if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
    try? inp.fileHandleForWriting.close()
    let timer = DispatchSource.makeTimerSource()
    timer.schedule(deadline: .now() + timeout)
    let pid = p.processIdentifier
    timer.setEventHandler { kill(pid, SIGKILL) }
    timer.resume()
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    timer.cancel()
    return Output(
        status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errBox.data, as: UTF8.self))
}

func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

struct TimedOut: Error, CustomStringConvertible { var description: String }

/// An API server in this process with the control plane (scheduler + controllers) and optional hollow
/// nodes, on a free loopback port with its own data dir.
final class Cluster: @unchecked Sendable {
    let server: APIServer
    let dir: String
    let port: Int
    let client: LocalClient
    private var task: Task<Void, any Error>?
    var kubeconfig: String { dir + "/admin.kubeconfig" }

    init(
        hollowNodes: Int = 0, configure: (inout ServerConfig) -> Void = { _ in },
        control: (inout ControlPlaneConfig) -> Void = { _ in }, hollow: (inout HollowConfig) -> Void = { _ in }
    ) async throws {
        port = try freePort()
        var config = ServerConfig(dataDir: NSTemporaryDirectory() + "berth-cp-\(UUID().uuidString.prefix(8))")
        config.port = port
        config.bookmarkInterval = .seconds(1)
        config.cancellationLimit = .seconds(60)  // see ServerConfig.cancellationLimit
        config.leaseDuration = .seconds(2)
        config.namespaceController = true  // as `berth server` runs it with its controllers
        config.garbageCollector = true
        configure(&config)
        dir = config.dataDir
        server = try APIServer(config: config)
        try server.writeKubeconfig()
        client = LocalClient(server: server, manager: "test")
        var cp = ControlPlaneConfig()
        control(&cp)
        var hc = HollowConfig(count: hollowNodes)
        hollow(&hc)
        let services: [any Service] = [
            ControlPlane(server: server, config: cp), HollowNodes(server: server, config: hc),
        ]
        let (ready, cont) = AsyncStream<Int>.makeStream()
        let s = server
        task = Task {
            do {
                try await s.run(
                    services: services,
                    onReady: {
                        cont.yield($0); cont.finish()
                    })
            } catch { cont.finish(); throw error }
        }
        var started = false
        for await _ in ready { started = true; break }
        if !started { _ = try await task?.value; throw APIError.internalError("server did not start") }
    }

    func kubectl(_ args: String..., stdin: String? = nil, env: [String: String] = [:], timeout: TimeInterval = 120)
        throws -> Output
    {
        try run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig] + args, env: env, stdin: stdin, timeout: timeout)
    }

    /// Waits until `predicate` holds for the objects of type `r` (checked now and after every change,
    /// through a store watch — no polling), or throws after `timeout`.
    func waitFor(
        _ r: ResourceType, namespace: String? = nil, timeout: Duration = .seconds(30), _ what: String,
        _ predicate: @escaping @Sendable ([JSON]) -> Bool
    ) async throws {
        let client = self.client
        try await withThrowingTaskGroup(of: Bool.self) { g in
            g.addTask {
                while !Task.isCancelled {
                    let (items, rev) = try await client.list(r, namespace: namespace)
                    if predicate(items) { return true }
                    let events = try await client.store.watch(
                        prefix: r.prefix(namespace: namespace), afterRevision: rev)
                    for try await _ in events {
                        let (now, _) = try await client.list(r, namespace: namespace)
                        if predicate(now) { return true }
                    }
                }
                return false
            }
            g.addTask {
                try await Task.sleep(for: timeout); return false
            }
            let ok = try await g.next() ?? false
            g.cancelAll()
            if !ok { throw TimedOut(description: "timed out after \(timeout) waiting for \(what)") }
        }
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Every control-plane suite that starts servers nests in this one, so they run one at a time.
@Suite("BerthControl", .serialized) struct ControlTests {}

/// The `berth` binary built next to the test bundle.
func berthBinary() -> String? {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [
        dir.appendingPathComponent("berth").path, dir.deletingLastPathComponent().appendingPathComponent("berth").path,
    ] {
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// `berth server` as a child process (for SIGKILL tests): ready once it prints its "ready" line.
final class ServerChild: @unchecked Sendable {
    let process = Process()
    let port: Int
    let dir: String
    private let ready = DispatchSemaphore(value: 0)
    var kubeconfig: String { dir + "/admin.kubeconfig" }

    init(binary: String, dir: String, port: Int, extra: [String]) throws {
        self.port = port; self.dir = dir
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments =
            ["server", "--data-dir", dir, "--listen", "127.0.0.1:\(port)", "--log-level", "error", "--disable-agent"]
            + extra
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let sem = ready
        Thread.detachNewThread {
            var seen = Data()
            while true {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                seen.append(d)
                if String(decoding: seen, as: UTF8.self).contains("ready ") { sem.signal(); break }
            }
        }
    }
    func waitReady(timeout: TimeInterval = 30) -> Bool { ready.wait(timeout: .now() + timeout) == .success }
    func kubectl(_ args: String..., timeout: TimeInterval = 120) throws -> Output {
        try kubectlArgs(args, timeout: timeout)
    }
    func kubectlArgs(_ args: [String], timeout: TimeInterval = 120) throws -> Output {
        try run(
            "/usr/bin/kubectl", ["--kubeconfig", kubeconfig, "--server", "https://127.0.0.1:\(port)"] + args,
            timeout: timeout)
    }
    func kill9() { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
}

let scriptsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts").path

/// Facts about pods read back as JSON through kubectl or the API (what the tests see, not what the
/// controllers use: those read typed pods).
enum PodJSON {
    static func controllerRef(_ obj: JSON) -> JSON? {
        (obj["metadata"]["ownerReferences"].array ?? []).first { $0["controller"].bool == true }
    }
    /// Counts toward a controller's replicas: not finished, not being deleted.
    static func isActive(_ pod: JSON) -> Bool {
        let phase = pod["status"]["phase"].string ?? ""
        return pod["metadata"]["deletionTimestamp"].isNull && phase != "Succeeded" && phase != "Failed"
    }
    static func isReady(_ pod: JSON) -> Bool {
        (pod["status"]["conditions"].array ?? []).contains { $0["type"] == "Ready" && $0["status"] == "True" }
    }
}
