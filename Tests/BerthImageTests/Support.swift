import Foundation
import Testing
@testable import BerthImage

/// Helpers shared by the image tests: temporary directories, processes, the test images, registries.
enum Support {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Real root (uid 0 with an identity uid map), as the runtime tests define it.
    static let isRoot: Bool = {
        guard geteuid() == 0, let map = try? String(contentsOfFile: "/proc/self/uid_map", encoding: .utf8) else {
            return false
        }
        return map.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init) == ["0", "0", "4294967295"]
    }()

    static func temporaryDirectory(_ name: String) -> String {
        let base = "/tmp/berth-image-tests"
        try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        var template = Array("\(base)/\(name).XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        return path
    }

    static func remove(_ path: String) {
        _ = try? run(["/bin/rm", "-rf", path])
    }

    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (
        status: Int32, output: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @discardableResult
    static func mustRun(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let (status, output) = try run(arguments, environment: environment)
        if status != 0 { throw TestFailure("\(arguments.joined(separator: " ")) exited \(status): \(output)") }
        return output
    }

    /// The layer tars built from this machine's Debian packages (scripts/image-build-test-images.sh), once.
    static let testImages: String = {
        let dir = "/tmp/berth-image-tests/images"
        _ = try? mustRun([packageRoot + "/scripts/image-build-test-images.sh", dir])
        return dir
    }()

    static var busyboxLayers: [String] { [testImages + "/busybox/layer1.tar.gz"] }
    static var bigLayers: [String] { (1...4).map { testImages + "/big/layer\($0).tar.gz" } }

    static func service(_ root: String, configure: (inout RegistryOptions) -> Void = { _ in }) throws -> ImageService {
        var options = RegistryOptions()
        options.credentials = CredentialStore()
        options.retryBaseDelay = .milliseconds(20)
        configure(&options)
        return try ImageService(store: try ContentStore(root: root), registryOptions: options)
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func waitForPort(_ port: Int) throws {
        for _ in 0..<200 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(fd)
            if rc == 0 { return }
            usleep(50_000)
        }
        throw TestFailure("nothing listening on 127.0.0.1:\(port)")
    }

    /// Lists a tree as "path type size" lines (for comparing two unpacks).
    static func listing(_ root: String) throws -> [String] {
        try mustRun(["find", root, "-mindepth", "1", "-printf", "%P %y %s %m %U:%G\\n"]).split(separator: "\n").map(
            String.init
        ).sorted()
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A process started by a test and stopped by PID (never by name).
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    init(_ arguments: [String], log: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
    deinit { stop() }
}

/// Debian's docker-registry on 127.0.0.1 with its own config and storage.
final class TestRegistry: @unchecked Sendable {
    let directory: String
    let port: Int
    let child: ChildProcess
    var host: String { "127.0.0.1:\(port)" }

    init(htpasswd: String? = nil, tls: (certificate: String, key: String)? = nil) throws {
        directory = Support.temporaryDirectory("registry")
        port = Support.freePort()
        var config = """
            version: 0.1
            log: {level: error, accesslog: {disabled: true}}
            storage: {filesystem: {rootdirectory: \(directory)/data}, delete: {enabled: true}}
            http: {addr: 127.0.0.1:\(port)\(tls.map { ", tls: {certificate: \($0.certificate), key: \($0.key)}" } ?? "")}

            """
        if let htpasswd { config += "auth: {htpasswd: {realm: berth-test, path: \(htpasswd)}}\n" }
        try config.write(toFile: directory + "/config.yml", atomically: true, encoding: .utf8)
        child = try ChildProcess(["docker-registry", "serve", directory + "/config.yml"], log: directory + "/log")
        try Support.waitForPort(port)
    }

    func stop() {
        child.stop()
        Support.remove(directory)
    }
}

/// scripts/image-fake-registry.py serving one OCI layout, with a fault mode.
final class FakeRegistry: @unchecked Sendable {
    let port: Int
    let child: ChildProcess
    var host: String { "127.0.0.1:\(port)" }

    init(layout: String, mode: String = "ok", bearer: String? = nil) throws {
        port = Support.freePort()
        var arguments = [
            "python3", Support.packageRoot + "/scripts/image-fake-registry.py", "--port", "\(port)", "--layout", layout,
            "--mode", mode,
        ]
        if let bearer { arguments += ["--bearer", bearer] }
        child = try ChildProcess(arguments, log: "/tmp/berth-image-tests/fake-\(port).log")
        try Support.waitForPort(port)
    }

    func stop() {
        child.stop()
        unlink("/tmp/berth-image-tests/fake-\(port).log")
    }
}
