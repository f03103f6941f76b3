import BerthImage
import BerthOS

/// Why an engine operation failed, with docker's exit-status convention for the CLI:
/// 125 the engine itself failed, 126 the command cannot be invoked, 127 the command was not found.
public enum EngineError: Error, CustomStringConvertible, Sendable {
    /// A user-supplied value is malformed: `what` names the option or field.
    case invalidArgument(what: String, reason: String)
    case noSuchContainer(String)
    /// A container reference that is the start of more than one ID (dockerd's InvalidParameter, 400).
    case ambiguousPrefix(String)
    case noSuchImage(String)
    case noSuchVolume(String)
    case noSuchNetwork(String)
    /// The name is taken (docker: `Conflict. The container name "/x" is already in use by container "…"`).
    case nameInUse(name: String, by: String)
    /// The operation is not possible in the container's state (`cannot remove a running container`).
    case conflict(String)
    /// The OCI runtime failed; `output` is what it said.
    case runtimeFailed(runtime: String, operation: String, output: String)
    /// The container's program could not be started: 126 (permission, not executable) or 127 (not found).
    case cannotStart(code: Int32, reason: String)
    case image(ImageError)
    case system(SystemCallError, context: String)
    case network(String)
    case other(String)

    public var description: String {
        switch self {
        case .invalidArgument(let what, let reason): return "invalid \(what): \(reason)"
        case .noSuchContainer(let name): return "No such container: \(name)"
        case .ambiguousPrefix(let prefix): return "multiple IDs found with provided prefix: \(prefix)"
        case .noSuchImage(let name): return "No such image: \(name)"
        case .noSuchVolume(let name): return "No such volume: \(name)"
        case .noSuchNetwork(let name): return "network \(name) not found"
        case .nameInUse(let name, let id):
            return
                "Conflict. The container name \"/\(name)\" is already in use by container \"\(id)\". You have to remove (or rename) that container to be able to reuse that name."
        case .conflict(let message): return message
        case .runtimeFailed(let runtime, let operation, let output):
            let text = output.trimmingCharacters(in: " \n\t")
            return "\(runtime) \(operation) failed" + (text.isEmpty ? "" : ": \(text)")
        case .cannotStart(_, let reason): return reason
        case .image(let error): return "\(error)"
        case .system(let error, let context): return "\(context): \(error)"
        case .network(let message): return message
        case .other(let message): return message
        }
    }

    /// The CLI's exit status for this error, as docker's (125 unless the program could not start).
    public var exitStatus: Int32 {
        if case .cannotStart(let code, _) = self { return code }
        return 125
    }
}

extension String {
    /// This string without the given characters at either end (Foundation's form takes a CharacterSet,
    /// which FoundationEssentials does not have).
    public func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
