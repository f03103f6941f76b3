#if canImport(Glibc)
import Glibc
#endif
import BerthOS
import CBerthShim
import FoundationEssentials

/// Runs OCI hooks: the state JSON on stdin, only the hook's own env, a timeout that kills it.
public enum Hooks {
    public enum Kind: String, Sendable {
        case prestart, createRuntime, createContainer, startContainer, poststart, poststop
    }

    public static func hooks(_ kind: Kind, in spec: Spec) -> [Spec.Hook] {
        guard let hooks = spec.hooks else { return [] }
        switch kind {
        case .prestart: return hooks.prestart ?? []
        case .createRuntime: return hooks.createRuntime ?? []
        case .createContainer: return hooks.createContainer ?? []
        case .startContainer: return hooks.startContainer ?? []
        case .poststart: return hooks.poststart ?? []
        case .poststop: return hooks.poststop ?? []
        }
    }

    /// Runs every hook of `kind` in order; the first failure stops the rest and is thrown.
    public static func run(_ kind: Kind, spec: Spec, state: OCIState) throws(RuntimeError) {
        let list = hooks(kind, in: spec)
        if list.isEmpty { return }
        let input: [UInt8]
        do { input = Array(try JSONEncoder().encode(state)) } catch { throw .other("encoding hook state: \(error)") }
        for hook in list {
            try run(hook, kind: kind, input: input)
        }
    }

    static func run(_ hook: Spec.Hook, kind: Kind, input: [UInt8]) throws(RuntimeError) {
        let stdin = try RuntimeError.wrap("creating hook stdin") { () throws(SystemCallError) in try Pipe() }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin.reading.rawValue, 0)
        let arguments = (hook.args?.isEmpty == false) ? hook.args! : [hook.path]
        // The hook starts with no signal blocked (`run` blocks the ones it forwards) and SIGPIPE default.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &pipeSignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = withCStringArray(arguments) { argv in
            withCStringArray(hook.env ?? []) { envp in
                posix_spawn(
                    &pid, hook.path, &actions, &attributes,
                    UnsafeMutablePointer(mutating: argv), UnsafeMutablePointer(mutating: envp))
            }
        }
        if result != 0 {
            throw .hookFailed(
                kind: kind.rawValue, path: hook.path,
                reason: SystemCallError(call: "posix_spawn", errno: result).description)
        }
        stdin.reading.close()
        // A hook that does not read its stdin must not kill us: SIGPIPE ignored while writing to it, then
        // put back (the container's process inherits the init's dispositions).
        let previous = signal(SIGPIPE, SIG_IGN)
        try? stdin.writing.write(input)
        signal(SIGPIPE, previous)
        stdin.writing.close()
        let status = try wait(pid: pid, timeout: hook.timeout, kind: kind, path: hook.path)
        if berth_wait_status_exited(status) != 0 {
            let code = berth_wait_status_exit_code(status)
            if code != 0 { throw .hookFailed(kind: kind.rawValue, path: hook.path, reason: "exit status \(code)") }
        } else if berth_wait_status_signaled(status) != 0 {
            throw .hookFailed(
                kind: kind.rawValue, path: hook.path, reason: "killed by signal \(berth_wait_status_signal(status))")
        }
    }

    /// Waits for the hook, killing it when its timeout passes (a pidfd makes the wait pollable).
    static func wait(pid: pid_t, timeout: Int?, kind: Kind, path: String) throws(RuntimeError) -> Int32 {
        if let timeout, timeout > 0 {
            let pidfd = berth_pidfd_open(pid, 0)
            if pidfd >= 0 {
                defer { close(pidfd) }
                var poller = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                var ready: Int32
                repeat { ready = poll(&poller, 1, Int32(timeout * 1000)) } while ready < 0 && errno == EINTR
                if ready == 0 {
                    kill(pid, SIGKILL)
                    var status: Int32 = 0
                    waitpid(pid, &status, 0)
                    throw .hookFailed(kind: kind.rawValue, path: path, reason: "timed out after \(timeout)s")
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR {
                throw .hookFailed(
                    kind: kind.rawValue, path: path, reason: SystemCallError(call: "waitpid", errno: errno).description)
            }
        }
        return status
    }
}
