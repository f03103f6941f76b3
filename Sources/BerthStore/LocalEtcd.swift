import AsyncHTTPClient
import Foundation
import NIOCore

/// Starts a private etcd (Debian's etcd-server) on loopback: for tests, benchmarks and single-machine
/// trials of the etcd datastore. Stops it by the PID it started.
public final class LocalEtcd: @unchecked Sendable {
    public struct Member: Sendable { public var name: String; public var clientURL: String; public var peerURL: String }
    public let members: [Member]
    public let dataDir: String
    private var processes: [Int: Process] = [:]
    private let lock = NSLock()

    /// Client endpoints, e.g. `http://127.0.0.1:23790`.
    public var endpoints: [String] { members.map(\.clientURL) }

    /// Prepares `count` members (1 or 3 …) with free loopback ports under a fresh temp data dir.
    public init(members count: Int = 1, binary: String = "/usr/bin/etcd") throws {
        dataDir = NSTemporaryDirectory() + "berth-etcd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        var ms: [Member] = []
        for i in 0..<count {
            ms.append(
                Member(
                    name: "m\(i)", clientURL: "http://127.0.0.1:\(try freePort())",
                    peerURL: "http://127.0.0.1:\(try freePort())"))
        }
        members = ms
        self.binary = binary
    }
    private let binary: String

    /// Starts every member and waits until the cluster answers.
    public func start(timeout: Duration = .seconds(20)) async throws {
        for i in members.indices { try startMember(i) }
        try await waitReady(timeout: timeout)
    }

    /// Starts member `i` (again).
    public func startMember(_ i: Int) throws {
        let m = members[i]
        let cluster = members.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = [
            "--name", m.name, "--data-dir", dataDir + "/" + m.name,
            "--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
            "--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "berth-\(dataDir.suffix(8))",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--enable-pprof=false", "--log-level", "error", "--logger", "zap",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        lock.lock(); processes[i] = p; lock.unlock()
    }

    /// Kills member `i` with SIGKILL.
    public func killMember(_ i: Int) {
        lock.lock(); let p = processes.removeValue(forKey: i); lock.unlock()
        if let p, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
    }

    /// Polls /health until every running member reports healthy (a readiness probe, not a sleep).
    public func waitReady(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        for m in members {
            while true {
                var req = HTTPClientRequest(url: m.clientURL + "/health")
                req.method = .GET
                if let resp = try? await HTTPClient.shared.execute(req, timeout: .seconds(1)),
                    let body = try? await resp.body.collect(upTo: 4096),
                    String(buffer: body).contains("true")
                {
                    break
                }
                if ContinuousClock.now > deadline { throw StoreError.backend("etcd \(m.clientURL) not ready") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Stops every member and removes the data dir.
    public func stop() {
        for i in members.indices { killMember(i) }
        try? FileManager.default.removeItem(atPath: dataDir)
    }

    deinit { stop() }
}

/// A currently free TCP port on 127.0.0.1 (bind to port 0, read it back, close).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw StoreError.backend("socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else { throw StoreError.backend("bind: errno \(errno)") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}
