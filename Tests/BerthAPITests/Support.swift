import BerthAPI
import BerthControl
import BerthStore
import Foundation
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
    timeout: TimeInterval = 60
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
    // Read both pipes concurrently so a chatty child cannot block.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let errData = errBox.data
    p.waitUntilExit()
    timer.cancel()
    return Output(
        status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// An API server running in this process on a free loopback port, with its own data dir.
final class TestServer: @unchecked Sendable {
    let server: APIServer
    let dir: String
    let port: Int
    private var task: Task<Void, any Error>?
    var kubeconfig: String { dir + "/admin.kubeconfig" }
    var url: String { server.url }
    var token: String { server.adminToken }

    init(
        datastore: ServerConfig.Datastore = .sqlite, etcd: [String] = [],
        configure: (inout ServerConfig) -> Void = { _ in }
    ) async throws {
        port = try freePort()
        var config = ServerConfig(dataDir: NSTemporaryDirectory() + "berth-api-\(UUID().uuidString.prefix(8))")
        config.port = port
        config.datastore = datastore
        config.etcdEndpoints = etcd
        config.bookmarkInterval = .seconds(1)
        config.cancellationLimit = .seconds(60)  // see ServerConfig.cancellationLimit
        // The garbage collector finishes deletes (dependents, Foreground and Orphan), as in `berth server`;
        // no other controller runs, so these tests see the API's own behaviour.
        config.garbageCollector = true
        configure(&config)
        dir = config.dataDir
        server = try APIServer(config: config)
        try server.writeKubeconfig()
        var control = ControlPlaneConfig()
        control.scheduler = false
        control.controllers = false
        control.garbageCollector = config.garbageCollector
        let gc = ControlPlane(server: server, config: control)
        let (ready, cont) = AsyncStream<Int>.makeStream()
        let s = server
        task = Task {
            do {
                try await s.run(
                    services: [gc],
                    onReady: {
                        cont.yield($0); cont.finish()
                    })
            } catch { cont.finish(); throw error }
        }
        var started = false
        for await _ in ready { started = true; break }
        if !started { _ = try await task?.value; throw APIError.internalError("server did not start") }
    }

    func kubectl(_ args: String..., stdin: String? = nil, env: [String: String] = [:]) throws -> Output {
        try kubectlArgs(args, stdin: stdin, env: env)
    }
    func kubectlArgs(_ args: [String], stdin: String? = nil, env: [String: String] = [:]) throws -> Output {
        try run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig] + args, env: env, stdin: stdin)
    }
    /// curl with the admin token; returns (HTTP code, body).
    func curl(
        _ method: String, _ path: String, body: String? = nil, contentType: String = "application/json",
        token: String? = nil, extra: [String] = []
    ) throws -> (Int, JSON) {
        var args = ["-s", "--cacert", dir + "/pki/ca.crt", "-X", method, "-w", "\n%{http_code}"]
        if let t = token ?? Optional(self.token), !t.isEmpty { args += ["-H", "Authorization: Bearer \(t)"] }
        if body != nil { args += ["-H", "Content-Type: \(contentType)", "--data-binary", "@-"] }
        args += extra + [url + path]
        let out = try run("/usr/bin/curl", args, stdin: body)
        let lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let code = Int(lines.last ?? "") ?? 0
        let text = lines.dropLast().joined(separator: "\n")
        return (code, (try? JSON.parse(text)) ?? .string(text))
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
        try? FileManager.default.removeItem(atPath: dir)
    }
}

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

let scriptsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts").path
let fixturesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// Expects every phrase in `text` (an error's field paths and words), each failure naming the phrase.
func expectMentions(_ text: String, _ phrases: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    for phrase in phrases {
        #expect(text.contains(phrase), "\(phrase) in \(text)", sourceLocation: sourceLocation)
    }
}

func pythonHasKubernetes() -> Bool {
    (try? run("python3", ["-c", "import kubernetes"]).ok) ?? false
}

/// Every API suite nests in this one: they start servers, etcd clusters and child processes, and run
/// one at a time so none of them competes with (or inherits the pipes of) another's children.
@Suite("BerthAPI", .serialized) struct APITests {}

struct StillWaiting: Error, CustomStringConvertible { var description: String }

extension TestServer {
    /// Polls `check` until it holds (the garbage collector works in the background), or throws after
    /// `timeout`. A poll, not a sleep standing in for one: it returns as soon as the condition is seen.
    func eventually(_ what: String, timeout: Duration = .seconds(30), _ check: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try check() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        if try check() { return }
        throw StillWaiting(description: "timed out after \(timeout) waiting for \(what)")
    }
}
