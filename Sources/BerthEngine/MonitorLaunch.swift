#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// Starting a container's monitor (`berth-monitor`) and the one line it answers on the sync socket:
/// `started PID` once the runtime runs the container, or `error MESSAGE`.
///
/// The engine makes the attach socket and, when it wants the output from the first byte, connects to
/// it before the monitor exists: the connection waits in the backlog until the monitor accepts it,
/// which it does before it reads any output. So there is no pause between the runtime's create and
/// start for the engine to attach in, and the monitor runs the container with one runtime command.
struct MonitorLaunch {
    let pid: pid_t
    let startTime: UInt64
    /// The connection to the attach socket, when asked for.
    let connection: FileDescriptor?
    private let sync: FileDescriptor

    struct Parameters {
        var monitorPath: String
        var runtime: OCIRuntime
        var id: String
        var bundle: String
        var stateDirectory: String
        var exitFile: String
        var logDriver: String
        var logPath: String
        var logMaximumSize: Int
        var logMaximumFiles: Int
        var terminal: Bool
        var openStdin: Bool
        var exitCommand: [String]
        /// `--health-*` monitor arguments (empty without a healthcheck).
        var health: [String] = []
        /// `--dns-*` monitor arguments (empty unless the container uses the embedded resolver).
        var dns: [String] = []
    }

    static func start(_ p: Parameters, attach: Bool) throws(EngineError) -> MonitorLaunch {
        var arguments = [
            p.monitorPath, "--id", p.id, "--bundle", p.bundle, "--runtime", p.runtime.path,
            "--state-dir", p.stateDirectory, "--exit-file", p.exitFile, "--sync-fd", "3", "--attach-fd", "4",
            "--log-driver", p.logDriver, "--log-path", p.logPath,
            "--log-max-size", String(p.logMaximumSize), "--log-max-file", String(p.logMaximumFiles),
        ]
        for a in p.runtime.globalArguments { arguments += ["--runtime-arg", a] }
        if p.terminal { arguments.append("--tty") }
        if p.openStdin { arguments.append("--stdin") }
        for a in p.exitCommand { arguments += ["--exit-command", a] }
        arguments += p.health
        arguments += p.dns
        let listener: FileDescriptor
        var connection: FileDescriptor?
        do {
            try FileSystem.makeDirectories(p.stateDirectory, mode: 0o700)
            listener = try UnixSocket.listen(p.stateDirectory + "/attach.sock")
            if attach { connection = try UnixSocket.connect(p.stateDirectory + "/attach.sock") }
        } catch {
            throw .system(error, context: "making the attach socket of container \(p.id.prefix(12))")
        }
        do {
            let pair = try SocketPair()
            let devnull = try FileDescriptor.open("/dev/null", O_RDWR)
            // Its own session: no terminal signal (^C in the CLI) reaches it, and it outlives the CLI.
            let pid = try ChildProcess.spawn(
                p.monitorPath, arguments: arguments, environment: ChildProcess.currentEnvironment,
                fileDescriptors: [
                    0: devnull.rawValue, 1: devnull.rawValue, 2: devnull.rawValue,
                    3: pair.second.rawValue, 4: listener.rawValue,
                ],
                options: .init(newSession: true))
            pair.second.close()
            listener.close()
            // The monitor is ours only until it has said `started`: after that it must not become a
            // zombie of a long-lived daemon, so a thread reaps it whenever it ends.
            reapInBackground(pid)
            return MonitorLaunch(
                pid: pid, startTime: ProcessStat.read(pid: pid)?.startTime ?? 0, connection: connection,
                sync: pair.first)
        } catch {
            throw .system(error, context: "starting \(p.monitorPath)")
        }
    }

    /// Waits for `started PID`; a failure carries the runtime's message (the monitor has deleted what
    /// the runtime made, and exits).
    func awaitStarted() throws(EngineError) -> Int32 {
        let line = readLine()
        sync.close()
        if line.hasPrefix("started "), let pid = Int32(line.dropFirst(8)) { return pid }
        throw MonitorLaunch.failure(line)
    }

    private func readLine() -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = read(sync.rawValue, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == 10 { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Docker's exit statuses for a program that cannot run: 127 not found, 126 not executable.
    static func failure(_ line: String) -> EngineError {
        guard line.hasPrefix("error ") else {
            return .other("the container's monitor exited before reporting" + (line.isEmpty ? "" : ": \(line)"))
        }
        let message = runtimeMessage(String(line.dropFirst(6)))
        let lower = message.lowercased()
        if lower.contains("executable file not found")
            || lower.contains("no such file or directory") && lower.contains("exec")
        {
            return .cannotStart(code: 127, reason: message)
        }
        if lower.contains("permission denied") && lower.contains("exec") || lower.contains("is a directory") {
            return .cannotStart(code: 126, reason: message)
        }
        return .runtimeFailed(runtime: "runtime", operation: "run", output: message)
    }
}

/// The message of a runtime's logrus-style line (`time="…" level=error msg="…"`), else the text itself.
func runtimeMessage(_ text: String) -> String {
    var messages: [String] = []
    var rest = Substring(text)
    while let start = rest.firstRange(of: "msg=\"") {
        var message = ""
        var index = start.upperBound
        var escaped = false
        while index < rest.endIndex {
            let c = rest[index]
            index = rest.index(after: index)
            if escaped { message.append(c == "n" ? "\n" : c); escaped = false; continue }
            if c == "\\" { escaped = true; continue }
            if c == "\"" { break }
            message.append(c)
        }
        messages.append(message)
        rest = rest[index...]
    }
    return messages.isEmpty ? text : messages.joined(separator: "; ")
}

/// Reaps `pid` on a detached thread, so a monitor started by a long-lived process never stays a zombie.
private func reapInBackground(_ pid: pid_t) {
    let box = UnsafeMutablePointer<pid_t>.allocate(capacity: 1)
    box.pointee = pid
    var thread = pthread_t()
    let started = pthread_create(
        &thread, nil,
        { raw in
            let pointer = raw!.assumingMemoryBound(to: pid_t.self)
            let pid = pointer.pointee
            pointer.deallocate()
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return nil
        }, box)
    if started == 0 { pthread_detach(thread) } else { box.deallocate() }
}
