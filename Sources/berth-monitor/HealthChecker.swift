#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim

/// The container's HEALTHCHECK, run by its monitor as docker's daemon runs it: `RUNTIME exec` of the
/// check every interval (the start interval during the start period), killed at its timeout; `retries`
/// failures in a row after the start period make the container unhealthy, one success healthy. The
/// state goes to a JSON file the engine reads (docker inspect's State.Health, with the last 5 results).
final class HealthChecker {
    struct Settings {
        var processFile: String
        var statusFile: String
        /// The engine's event log and what a `health_status` event names (docker's attributes).
        var eventsFile: String
        var name: String
        var image: String
        var interval: Double
        var timeout: Double
        var startPeriod: Double
        var startInterval: Double
        var retries: Int
    }

    struct Check {
        var pid: pid_t
        var pidfd: Int32
        var output: FileDescriptor
        var bytes: [UInt8] = []
        var startedAt: String
        var deadline: Double
    }

    let settings: Settings
    let runtime: String
    let runtimeArguments: [String]
    let id: String
    let began = Timestamp.monotonic()
    var nextDue: Double
    var running: Check?
    var status = "starting"
    var failingStreak = 0
    var log: [String] = []

    init(settings: Settings, runtime: String, runtimeArguments: [String], id: String) {
        self.settings = settings
        self.runtime = runtime
        self.runtimeArguments = runtimeArguments
        self.id = id
        self.nextDue = began + (settings.startPeriod > 0 ? settings.startInterval : settings.interval)
        write()
    }

    /// Milliseconds until something is due (a check to start or to time out).
    var timeout: Int32 {
        let due = running?.deadline ?? nextDue
        return Int32(max(0, min(Double(Int32.max / 2), (due - Timestamp.monotonic()) * 1000)))
    }

    /// Descriptors to watch while a check runs.
    var descriptors: [Int32] { running.map { [$0.output.rawValue, $0.pidfd].filter { $0 >= 0 } } ?? [] }

    /// Starts a check when due, reads its output, ends it at exit or timeout.
    func step() {
        if var check = running {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(check.output.rawValue, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                if check.bytes.count < 4096 { check.bytes += buffer[0..<min(n, 4096 - check.bytes.count)] }
            }
            running = check
            var status: Int32 = 0
            if waitpid(check.pid, &status, WNOHANG) == check.pid {
                finish(exitCode: ChildProcess.ExitStatus(waitStatus: status).code)
            } else if Timestamp.monotonic() >= check.deadline {
                kill(check.pid, SIGKILL)
                _ = waitpid(check.pid, &status, 0)
                let seconds = settings.timeout
                running?.bytes = Array(
                    "Health check exceeded timeout (\(seconds == Double(Int(seconds)) ? "\(Int(seconds))" : "\(seconds)")s)"
                        .utf8)
                finish(exitCode: -1)
            }
            return
        }
        guard Timestamp.monotonic() >= nextDue else { return }
        start()
    }

    private func start() {
        guard let pipe = try? Pipe(), let devnull = try? FileDescriptor.open("/dev/null", O_RDONLY) else { return }
        _ = berth_fcntl_int(pipe.reading.rawValue, F_SETFL, O_NONBLOCK)
        let arguments = [runtime] + runtimeArguments + ["exec", "--process", settings.processFile, id]
        guard
            let pid = try? ChildProcess.spawn(
                runtime, arguments: arguments, environment: ChildProcess.currentEnvironment,
                fileDescriptors: [0: devnull.rawValue, 1: pipe.writing.rawValue, 2: pipe.writing.rawValue])
        else {
            nextDue = Timestamp.monotonic() + settings.interval
            return
        }
        pipe.writing.close()
        HealthProcesses.active.insert(pid)
        running = Check(
            pid: pid, pidfd: berth_pidfd_open(pid, 0), output: pipe.reading, startedAt: Timestamp.now(),
            deadline: Timestamp.monotonic() + settings.timeout)
    }

    private func finish(exitCode: Int32) {
        guard let check = running else { return }
        HealthProcesses.active.remove(check.pid)
        if check.pidfd >= 0 { close(check.pidfd) }
        running = nil
        let inStartPeriod = Timestamp.monotonic() - began < settings.startPeriod
        let previous = status
        defer { if status != previous { event("health_status: \(status)") } }
        if exitCode == 0 {
            status = "healthy"
            failingStreak = 0
        } else if !inStartPeriod || status != "starting" {
            failingStreak += 1
            if failingStreak >= settings.retries { status = "unhealthy" }
        }
        var entry: [UInt8] = Array(
            "{\"Start\":\"\(check.startedAt)\",\"End\":\"\(Timestamp.now())\",\"ExitCode\":\(exitCode),\"Output\":\""
                .utf8)
        ContainerLog.appendEscaped(check.bytes, to: &entry)
        entry += Array("\"}".utf8)
        log.append(String(decoding: entry, as: UTF8.self))
        if log.count > 5 { log.removeFirst(log.count - 5) }
        nextDue =
            Timestamp.monotonic()
            + (status == "starting" && inStartPeriod && settings.startInterval > 0
                ? settings.startInterval : settings.interval)
        write()
    }

    /// One line in the engine's event log, as BerthEngine.EventLog writes them (one O_APPEND write).
    private func event(_ action: String) {
        guard !settings.eventsFile.isEmpty else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nano = Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)
        var json: [UInt8] = []
        func string(_ text: String) {
            json += [34]; ContainerLog.appendEscaped(Array(text.utf8), to: &json); json += [34]
        }
        json += Array("{\"status\":".utf8); string(action)
        json += Array(",\"id\":".utf8); string(id)
        json += Array(",\"from\":".utf8); string(settings.image)
        json += Array(",\"Type\":\"container\",\"Action\":".utf8); string(action)
        json += Array(",\"Actor\":{\"ID\":".utf8); string(id)
        json += Array(",\"Attributes\":{\"image\":".utf8); string(settings.image)
        json += Array(",\"name\":".utf8); string(settings.name)
        json += Array("}},\"scope\":\"local\",\"time\":\(now.tv_sec),\"timeNano\":\(nano)}\n".utf8)
        let fd = open(settings.eventsFile, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = json.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    private func write() {
        let text =
            "{\"status\":\"\(status)\",\"failingStreak\":\(failingStreak),\"log\":[\(log.joined(separator: ","))]}\n"
        try? FileSystem.writeAtomically(settings.statusFile, Array(text.utf8), mode: 0o644, durable: false)
    }
}

/// Health-check runtimes in flight: the monitor's reaper leaves them to the checker.
enum HealthProcesses {
    nonisolated(unsafe) static var active: Set<pid_t> = []
}
