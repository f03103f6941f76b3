#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: which call, on what, and the errno it returned.
///
/// Every system call in Berth goes through ``sys(_:_:_:)`` so that failures carry the name of the call
/// and the object it acted on, never a flattened string.
public struct SystemCallError: Error, Equatable, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32
    /// What the call acted on (a path, a pid, a cgroup file), when that helps the reader.
    public let subject: String?

    public init(call: String, errno: Int32, subject: String? = nil) {
        self.call = call
        self.errno = errno
        self.subject = subject
    }

    public var description: String {
        let what = subject.map { " \($0)" } ?? ""
        return "\(call)\(what): \(String(cString: strerror(errno))) (\(Errno.name(errno)))"
    }
}

/// Runs a system call that returns -1 (or a negative value) and sets errno on failure, retrying EINTR.
@inline(__always)
public func sys<T: BinaryInteger>(
    _ call: String, _ subject: @autoclosure () -> String? = nil,
    _ body: () -> T
) throws(SystemCallError) -> T {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemCallError(call: call, errno: code, subject: subject())
    }
}

/// Like ``sys(_:_:_:)`` for calls that return a pointer (NULL on failure).
@inline(__always)
public func sysPointer<T>(
    _ call: String, _ subject: @autoclosure () -> String? = nil,
    _ body: () -> T?
) throws(SystemCallError) -> T {
    while true {
        if let result = body() { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemCallError(call: call, errno: code, subject: subject())
    }
}

/// Symbolic errno names for messages (EPERM reads better than 1 in a log).
public enum Errno {
    public static func name(_ code: Int32) -> String {
        switch code {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ESRCH: return "ESRCH"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case EBADF: return "EBADF"
        case ECHILD: return "ECHILD"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case EXDEV: return "EXDEV"
        case ENODEV: return "ENODEV"
        case ENOTDIR: return "ENOTDIR"
        case EISDIR: return "EISDIR"
        case EINVAL: return "EINVAL"
        case ENOSPC: return "ENOSPC"
        case EROFS: return "EROFS"
        case EPIPE: return "EPIPE"
        case ERANGE: return "ERANGE"
        case ENOSYS: return "ENOSYS"
        case ENOTEMPTY: return "ENOTEMPTY"
        case ELOOP: return "ELOOP"
        case ENAMETOOLONG: return "ENAMETOOLONG"
        case ETXTBSY: return "ETXTBSY"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        case ENOTSUP: return "ENOTSUP"
        case ETIMEDOUT: return "ETIMEDOUT"
        case ECONNREFUSED: return "ECONNREFUSED"
        default: return "errno \(code)"
        }
    }
}
