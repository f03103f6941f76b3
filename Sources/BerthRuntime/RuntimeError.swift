import BerthOS

/// Why a runtime operation failed. Each case names what was wrong; system failures keep their cause.
public enum RuntimeError: Error, CustomStringConvertible, Sendable {
    /// config.json is malformed or invalid: `field` is its JSON path (e.g. `linux.namespaces[2].type`).
    case invalidConfig(field: String, reason: String)
    case containerNotFound(id: String)
    case containerExists(id: String)
    case invalidContainerID(id: String)
    /// The operation is not allowed in the container's current status.
    case invalidState(id: String, status: String, operation: String)
    case system(SystemCallError, context: String)
    case hookFailed(kind: String, path: String, reason: String)
    case unsupported(String)
    case cgroup(String)
    case seccomp(String)
    case other(String)

    public var description: String {
        switch self {
        case .invalidConfig(let field, let reason): return "invalid config.json: \(field): \(reason)"
        case .containerNotFound(let id): return "container does not exist: \(id)"
        case .containerExists(let id): return "container with id exists: \(id)"
        case .invalidContainerID(let id): return "invalid container id format: \(id)"
        case .invalidState(let id, let status, let operation):
            return "cannot \(operation) container \(id): container is \(status)"
        case .system(let error, let context): return context.isEmpty ? error.description : "\(context): \(error)"
        case .hookFailed(let kind, let path, let reason): return "\(kind) hook \(path) failed: \(reason)"
        case .unsupported(let what): return "unsupported: \(what)"
        case .cgroup(let message): return "cgroup: \(message)"
        case .seccomp(let message): return "seccomp: \(message)"
        case .other(let message): return message
        }
    }
}

extension RuntimeError {
    /// Wraps a system call failure with what the runtime was doing.
    static func wrap<T>(_ context: String, _ body: () throws(SystemCallError) -> T) throws(RuntimeError) -> T {
        do { return try body() } catch { throw RuntimeError.system(error, context: context) }
    }
}
