#if canImport(Glibc)
import Glibc
#endif
import CBerthShim

/// Starting other programs from a multithreaded Swift process: always `posix_spawn` (vfork + exec in
/// glibc, no Swift code between them), never `fork`.
///
/// Used by the engine to call an OCI runtime's command line and start monitors, and by the network
/// layer to call CNI plugins.
public enum ChildProcess {
    /// What a finished program left behind.
    public struct Output: Sendable {
        public var status: ExitStatus
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        /// The run outlived its `timeout` (its `onTimeout` was called).
        public var timedOut = false
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// How a child ended.
    public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        public init(waitStatus: Int32) {
            if berth_wait_status_signaled(waitStatus) != 0 {
                self = .signaled(berth_wait_status_signal(waitStatus))
            } else {
                self = .exited(berth_wait_status_exit_code(waitStatus))
            }
        }

        public var succeeded: Bool { self == .exited(0) }
        /// The shell's convention: the code, or 128 + the signal.
        public var code: Int32 {
            switch self {
            case .exited(let c): return c
            case .signaled(let s): return 128 + s
            }
        }
        public var description: String {
            switch self {
            case .exited(let c): return "exit status \(c)"
            case .signaled(let s): return "killed by signal \(s)"
            }
        }
    }

    /// Options for ``spawn(_:arguments:environment:fileActions:options:)``.
    public struct SpawnOptions: Sendable {
        /// Start a new session (the child survives its parent's terminal and process group).
        public var newSession = false
        /// Working directory of the child (glibc ≥ 2.29 `posix_spawn_file_actions_addchdir_np`).
        public var directory: String?
        public init(newSession: Bool = false, directory: String? = nil) {
            self.newSession = newSession
            self.directory = directory
        }
    }

    /// Starts `path` with `arguments` (argv[0] included) and returns its pid. `fileDescriptors` maps a
    /// child fd number to a descriptor of ours (dup2'ed in the child; every descriptor above the highest target is closed).
    /// The child starts with no signal blocked and every signal at its default disposition.
    public static func spawn(
        _ path: String, arguments: [String], environment: [String],
        fileDescriptors: [Int32: Int32] = [:], options: SpawnOptions = SpawnOptions()
    ) throws(SystemCallError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 onto a target that is also a source would clobber it: move every source above the
        // targets first (fcntl F_DUPFD is not a file action, so go through high numbers with dup2).
        var staged: [(Int32, Int32)] = []
        let ceiling = (fileDescriptors.keys.max() ?? 2) + 1
        for (index, (target, source)) in fileDescriptors.sorted(by: { $0.key < $1.key }).enumerated() {
            let temporary = ceiling + 100 + Int32(index)
            posix_spawn_file_actions_adddup2(&actions, source, temporary)
            staged.append((temporary, target))
        }
        for (temporary, target) in staged {
            posix_spawn_file_actions_adddup2(&actions, temporary, target)
            posix_spawn_file_actions_addclose(&actions, temporary)
        }
        // Nothing else crosses: not every library marks its descriptors close-on-exec (SwiftNIO's
        // accepted connections are not), and a connection inherited by a long-lived child (a monitor
        // outliving the daemon) stays open after the daemon closes or dies, hanging its client.
        _ = berth_spawn_file_actions_addclosefrom(&actions, ceiling)
        if let directory = options.directory {
            _ = berth_spawn_file_actions_addchdir(&actions, directory)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if options.newSession { flags |= Int32(BERTH_POSIX_SPAWN_SETSID) }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var pid: pid_t = 0
        let result = withCStringArray(arguments) { argv in
            withCStringArray(environment) { envp in
                posix_spawn(&pid, path, &actions, &attributes, argv, envp)
            }
        }
        guard result == 0 else { throw SystemCallError(call: "posix_spawn", errno: result, subject: path) }
        return pid
    }

    /// Waits for `pid` (a child of ours) and returns how it ended.
    public static func wait(_ pid: pid_t) throws(SystemCallError) -> ExitStatus {
        var status: Int32 = 0
        _ = try sys("waitpid", String(pid)) { waitpid(pid, &status, 0) }
        return ExitStatus(waitStatus: status)
    }

    /// Runs a program to completion: `input` on its stdin, its stdout and stderr collected (each up to
    /// `limit` bytes; more is read and dropped so the child never blocks on a full pipe).
    /// Blocks the calling thread; call it off the cooperative pool for long-running programs.
    public static func run(
        _ path: String, arguments: [String], environment: [String], input: [UInt8] = [],
        extraFileDescriptors: [Int32: Int32] = [:], limit: Int = 16 << 20,
        options: SpawnOptions = SpawnOptions(), timeout: Double? = nil, onTimeout: ((pid_t) -> Void)? = nil
    ) throws(SystemCallError) -> Output {
        let stdin = try Pipe()
        let stdout = try Pipe()
        let stderr = try Pipe()
        var map = extraFileDescriptors
        map[0] = stdin.reading.rawValue
        map[1] = stdout.writing.rawValue
        map[2] = stderr.writing.rawValue
        let pid = try spawn(
            path, arguments: arguments, environment: environment, fileDescriptors: map, options: options)
        stdin.reading.close()
        stdout.writing.close()
        stderr.writing.close()
        var out: [UInt8] = []
        var err: [UInt8] = []
        var pending = input[...]
        var writer: FileDescriptor? = stdin.writing
        if pending.isEmpty { writer?.close(); writer = nil }
        var open = [stdout.reading.rawValue: true, stderr.reading.rawValue: true]
        var buffer = [UInt8](repeating: 0, count: 65536)
        // Past the deadline `onTimeout` is called once (to kill what runs) and the output read to its end.
        let deadline = timeout.map { Timestamp.monotonic() + $0 }
        var timedOut = false
        while open.values.contains(true) || writer != nil {
            var fds: [pollfd] = []
            if let w = writer { fds.append(pollfd(fd: w.rawValue, events: Int16(POLLOUT), revents: 0)) }
            for (fd, isOpen) in open where isOpen { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            var wait: Int32 = -1
            if let deadline, !timedOut {
                let left = deadline - Timestamp.monotonic()
                if left <= 0 {
                    timedOut = true
                    onTimeout?(pid)
                    continue
                }
                wait = Int32(min(left * 1000, Double(Int32.max - 1))) + 1
            }
            let ready = try sys("poll") { poll(&fds, nfds_t(fds.count), wait) }
            if ready == 0 { continue }
            for entry in fds where entry.revents != 0 {
                if let w = writer, entry.fd == w.rawValue {
                    let written = pending.withUnsafeBytes { raw in Glibc.write(w.rawValue, raw.baseAddress, raw.count) }
                    if written > 0 { pending = pending.dropFirst(written) }
                    // EPIPE (SIGPIPE is ignored by the caller or fatal by design) or all written: close.
                    if written < 0 && errno != EAGAIN && errno != EINTR || pending.isEmpty { w.close(); writer = nil }
                    continue
                }
                let n = buffer.withUnsafeMutableBytes { Glibc.read(entry.fd, $0.baseAddress, $0.count) }
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if n <= 0 { open[entry.fd] = false; continue }
                if entry.fd == stdout.reading.rawValue {
                    if out.count < limit { out.append(contentsOf: buffer[0..<min(n, limit - out.count)]) }
                } else if err.count < limit {
                    err.append(contentsOf: buffer[0..<min(n, limit - err.count)])
                }
            }
        }
        let status = try wait(pid)
        var output = Output(status: status, stdout: out, stderr: err)
        output.timedOut = timedOut
        return output
    }

    /// Finds `name` in `PATH` (or returns it when it contains a slash).
    public static func lookup(_ name: String, path: String? = nil) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let search =
            path ?? getenv("PATH").map { String(cString: $0) }
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in search.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The current process's environment as `KEY=value` strings.
    public static var currentEnvironment: [String] {
        var result: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            result.append(String(cString: entry))
            pointer += 1
        }
        return result
    }
}

/// NUL-terminated C string arrays for exec-style calls, valid during `body`.
public func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
