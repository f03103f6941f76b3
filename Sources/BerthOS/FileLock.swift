#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on a file, held until the value is dropped or the process ends (the kernel
/// releases it then, so a holder that dies never leaves it taken). Close-on-exec: children do not
/// inherit it.
public final class FileLock {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Takes the lock at `path` (creating the file), waiting for another holder if `wait`; nil when
    /// `wait` is false and someone else holds it.
    public static func acquire(_ path: String, wait: Bool) throws(SystemCallError) -> FileLock? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError(call: "open", errno: errno, subject: path) }
        while flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            let failure = errno
            if failure == EINTR { continue }
            close(fd)
            if failure == EWOULDBLOCK && !wait { return nil }
            throw SystemCallError(call: "flock", errno: failure, subject: path)
        }
        return FileLock(fd: fd)
    }

    /// Takes the lock at `path`, waiting at most `seconds` for another holder; nil if it was still held
    /// then. flock has no timeout and a holder may be stopped (SIGSTOP) rather than gone, so the wait is
    /// a bounded series of non-blocking tries, 5 ms apart.
    public static func acquire(_ path: String, waitingAtMost seconds: Double) throws(SystemCallError) -> FileLock? {
        let deadline = Timestamp.monotonic() + seconds
        while true {
            if let lock = try acquire(path, wait: false) { return lock }
            if Timestamp.monotonic() >= deadline { return nil }
            usleep(5_000)
        }
    }

    /// Whether someone holds the lock at `path` now (false when the file does not exist).
    public static func isHeld(_ path: String) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            return errno == EWOULDBLOCK
        }
        return false
    }
}
