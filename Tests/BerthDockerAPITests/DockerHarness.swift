#if canImport(Glibc)
import Glibc
#endif
import BerthImage
import BerthOS
// The suite helpers every file of this target uses (isRealRoot, builtExecutable, TestFailure).
@_exported import BerthTestSupport
import FoundationEssentials
import Testing

/// The docker CLI the suite drives (28.x here); nil when the machine has none.
let dockerCLI: String? = ["/usr/local/bin/docker", "/usr/bin/docker"].first { FileSystem.exists($0) }

/// The python3 on this process's PATH (pyenv's, where pip put the SDK, or Debian's).
let python3: String? = ChildProcess.lookup("python3")

/// The docker SDK for Python is importable by it.
let pythonSDK: Bool = {
    guard let python3 else { return false }
    let probe = try? ChildProcess.run(
        python3, arguments: ["python3", "-c", "import docker"], environment: ChildProcess.currentEnvironment)
    return probe?.status == .exited(0)
}()

let standardPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/// A `berth engine` daemon of its own for one test: a temporary data root and run directory holding
/// an image built from this machine's busybox (as the engine suites build theirs), the daemon serving
/// a socket in the temporary directory, and the real docker CLI pointed at it with DOCKER_HOST.
final class DaemonBox: @unchecked Sendable {
    let base: String
    let root: String
    let run: String
    private(set) var socket: String
    let berth = builtExecutable("berth")
    /// busybox with every applet linked; config: Cmd sh, Env PATH and FROM_IMAGE=yes, label from=image.
    let image = "test/dockerapi:1"
    private(set) var daemon: pid_t = 0
    private var daemonOutput: FileDescriptor?
    /// What the daemon printed on stdout when it became ready: one `ready ADDRESS` line per listener.
    private(set) var readyText = ""

    init(_ name: String) throws {
        var template = Array("/tmp/berth-dapi-\(name)-XXXXXX".utf8CString)
        base = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        root = base + "/root"
        run = base + "/run"
        socket = base + "/docker.sock"
        try FileSystem.makeDirectories(root, mode: 0o700)
        try FileSystem.makeDirectories(run, mode: 0o700)
        try FileSystem.makeDirectories(base + "/docker-config", mode: 0o700)
        let tar = try Self.buildLayer(base)
        try Self.importImage([tar], into: root, name: image)
        try startDaemon()
    }

    /// busybox and its applets as one layer tar.
    static func buildLayer(_ base: String) throws -> String {
        try FileSystem.makeDirectories(base + "/image/srv", mode: 0o755)
        return try busyboxLayer(
            in: base, files: ["/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "/etc/group": "root:x:0:\n"])
    }

    /// A layer tar (`<staging>/extra.tar`) holding one file, /etc/pulled with `content`: a layer the
    /// daemon's store does not have, for images pushed to a registry and pulled back.
    static func extraLayer(in staging: String, content: String) throws -> String {
        try FileSystem.makeDirectories(staging + "/extra/etc", mode: 0o755)
        try FileSystem.writeAtomically(staging + "/extra/etc/pulled", Array(content.utf8), mode: 0o644)
        let tar = staging + "/extra.tar"
        let packed = try ChildProcess.run(
            "/bin/tar", arguments: ["tar", "--numeric-owner", "-C", staging + "/extra", "-cf", tar, "."],
            environment: [])
        guard packed.status.succeeded else { throw TestFailure("tar: \(packed.stderrText)") }
        return tar
    }

    static func importImage(_ tars: [String], into root: String, name: String) throws {
        var config = ImageConfig.ContainerConfig()
        config.Cmd = ["sh"]
        config.Env = ["PATH=/bin", "FROM_IMAGE=yes"]
        config.WorkingDir = "/srv"
        config.Labels = ["from": "image"]
        let service = try ImageService(store: try ContentStore(root: root))
        let imageConfig = config
        try runBlocking { _ = try await service.importLayers(tars, name: name, config: imageConfig) }
        try runBlocking { await service.shutdown() }
    }

    /// Starts `berth engine` on the box's socket (or `socket`) and returns once it says it is ready.
    func startDaemon(socket path: String? = nil, extra: [String] = []) throws {
        if let path { socket = path }
        let output = try Pipe()
        let log = try FileDescriptor.open(base + "/daemon.log", O_WRONLY | O_CREAT | O_APPEND, mode: 0o600)
        let devnull = try FileDescriptor.open("/dev/null", O_RDONLY)
        daemon = try ChildProcess.spawn(
            berth, arguments: [berth, "engine", "--root", root, "--host", "unix://" + socket] + extra,
            environment: ["BERTH_RUN=\(run)", standardPath],
            fileDescriptors: [0: devnull.rawValue, 1: output.writing.rawValue, 2: log.rawValue])
        output.writing.close()
        daemonOutput = output.reading
        // The daemon prints `ready unix://…` once its socket accepts connections.
        var seen: [UInt8] = []
        let deadline = Timestamp.monotonic() + 60
        while !String(decoding: seen, as: UTF8.self).contains("ready unix://") {
            var entry = pollfd(fd: output.reading.rawValue, events: Int16(POLLIN), revents: 0)
            let left = deadline - Timestamp.monotonic()
            guard left > 0, poll(&entry, 1, Int32(left * 1000)) > 0 else {
                throw TestFailure("berth engine did not become ready: \(daemonLog)")
            }
            let chunk = try output.reading.read(upTo: 4096)
            guard !chunk.isEmpty else { throw TestFailure("berth engine exited: \(daemonLog)") }
            seen += chunk
        }
        readyText = String(decoding: seen, as: UTF8.self)
    }

    var daemonLog: String { (try? FileSystem.readString(base + "/daemon.log")) ?? "" }

    /// Sends SIGTERM to the daemon (only to the one this box started) and returns how it ended.
    @discardableResult
    func stopDaemon() throws -> ChildProcess.ExitStatus? {
        guard daemon > 0 else { return nil }
        kill(daemon, SIGTERM)
        let status = try ChildProcess.wait(daemon)
        daemon = 0
        daemonOutput?.close()
        daemonOutput = nil
        return status
    }

    /// Runs the docker CLI against this box's daemon.
    @discardableResult
    func docker(_ arguments: [String], input: String = "") throws -> ChildProcess.Output {
        guard let dockerCLI else { throw TestFailure("no docker CLI") }
        return try ChildProcess.run(
            dockerCLI, arguments: ["docker"] + arguments,
            environment: [
                "DOCKER_HOST=unix://\(socket)", "DOCKER_CONFIG=\(base)/docker-config", standardPath, "HOME=\(base)",
            ],
            input: Array(input.utf8))
    }

    /// Starts the docker CLI without waiting for it: its stdout (and stderr) to `output`.
    func spawnDocker(_ arguments: [String], output: String) throws -> pid_t {
        guard let dockerCLI else { throw TestFailure("no docker CLI") }
        let out = try FileDescriptor.open(output, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
        let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
        return try ChildProcess.spawn(
            dockerCLI, arguments: ["docker"] + arguments,
            environment: [
                "DOCKER_HOST=unix://\(socket)", "DOCKER_CONFIG=\(base)/docker-config", standardPath, "HOME=\(base)",
            ],
            fileDescriptors: [0: devnull.rawValue, 1: out.rawValue, 2: devnull.rawValue])
    }

    /// Runs `berth VERB --root R ARGS…` beside the daemon (the same store).
    @discardableResult
    func berthCLI(_ arguments: [String]) throws -> ChildProcess.Output {
        try ChildProcess.run(
            berth, arguments: [berth] + arguments.prefix(1) + ["--root", root] + arguments.dropFirst(),
            environment: ["BERTH_RUN=\(run)", standardPath])
    }

    /// Polls `condition` every 20 ms until it holds or `seconds` pass (for states with no event to await).
    func eventually(_ seconds: Double = 20, _ condition: () throws -> Bool) throws -> Bool {
        let deadline = Timestamp.monotonic() + seconds
        while Timestamp.monotonic() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }

    /// Stops the daemon, removes every container it or the tests left, then the data.
    func tearDown() {
        _ = try? stopDaemon()
        if let ids = try? berthCLI(["ps", "-aq", "--no-trunc"]).stdoutText.split(separator: "\n").map(String.init),
            !ids.isEmpty
        {
            _ = try? berthCLI(["rm", "-f"] + ids)
        }
        umount2(run + "/netns", Int32(MNT_DETACH))
        _ = try? ChildProcess.run("/bin/rm", arguments: ["rm", "-rf", base], environment: [])
    }
}

/// Debian's docker-registry on 127.0.0.1 with its own storage, stopped by its pid.
final class LocalRegistry: @unchecked Sendable {
    let directory: String
    let port: Int
    private var pid: pid_t = 0
    var host: String { "127.0.0.1:\(port)" }

    init(in base: String) throws {
        directory = base + "/registry"
        try FileSystem.makeDirectories(directory, mode: 0o700)
        port = LocalRegistry.freePort()
        let config = """
            version: 0.1
            log: {level: error, accesslog: {disabled: true}}
            storage: {filesystem: {rootdirectory: \(directory)/data}, delete: {enabled: true}}
            http: {addr: 127.0.0.1:\(port)}

            """
        try FileSystem.writeAtomically(directory + "/config.yml", Array(config.utf8))
        let log = try FileDescriptor.open(directory + "/log", O_WRONLY | O_CREAT, mode: 0o600)
        let devnull = try FileDescriptor.open("/dev/null", O_RDONLY)
        guard let program = ChildProcess.lookup("docker-registry", path: "/usr/bin:/usr/sbin:/bin") else {
            throw TestFailure("no docker-registry")
        }
        pid = try ChildProcess.spawn(
            program, arguments: [program, "serve", directory + "/config.yml"], environment: [standardPath],
            fileDescriptors: [0: devnull.rawValue, 1: log.rawValue, 2: log.rawValue])
        try LocalRegistry.awaitAccepting(port, within: 30, what: "docker-registry")
    }

    /// Returns once 127.0.0.1:`port` accepts connections: a test server with no readiness line to wait for.
    static func awaitAccepting(_ port: Int, within seconds: Double, what: String) throws {
        let deadline = Timestamp.monotonic() + seconds
        while !accepts(port) {
            guard Timestamp.monotonic() < deadline else { throw TestFailure("\(what) did not start") }
            usleep(20_000)
        }
    }

    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        _ = try? ChildProcess.wait(pid)
        pid = 0
    }

    static func freePort() -> Int { Int(freeLocalPort()) }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        } == 0
    }
}

/// One HTTP/1.1 exchange over the daemon's socket, written by hand so that malformed requests can be
/// sent (`Connection: close`: the response ends when the daemon closes).
func rawExchange(_ socket: String, _ request: String) throws -> (status: Int, headers: [String: String], body: String) {
    let connection = try UnixSocket.connect(socket)
    try connection.send(Array(request.utf8))
    let reply = String(decoding: try connection.readAll(), as: UTF8.self)
    guard let split = reply.firstRange(of: "\r\n\r\n") else { throw TestFailure("no response head in \(reply)") }
    let lines = reply[..<split.lowerBound].split(separator: "\r\n")
    let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        if let colon = line.firstIndex(of: ":") {
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmed
        }
    }
    return (status, headers, String(reply[split.upperBound...]))
}

extension StringProtocol {
    /// Without leading and trailing white space.
    var trimmed: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// Runs async work from a synchronous initializer.
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    let done = Semaphore()
    nonisolated(unsafe) var failure: (any Error)?
    Task {
        do { try await body() } catch { failure = error }
        done.signal()
    }
    done.wait()
    if let failure { throw failure }
}

/// A one-shot semaphore on a pthread condition (FoundationEssentials has no DispatchSemaphore).
final class Semaphore: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var signalled = false
    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }
    func signal() {
        pthread_mutex_lock(&mutex)
        signalled = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }
    func wait() {
        pthread_mutex_lock(&mutex)
        while !signalled { pthread_cond_wait(&condition, &mutex) }
        pthread_mutex_unlock(&mutex)
    }
}
