import BerthEngine
import BerthImage
import BerthOS
import GRPCCore

/// The status codes the CRI gives its errors (the kubelet acts on NotFound and DeadlineExceeded; the
/// rest it reports), each with a message that names the object.
enum CRIError {
    static func notFound(_ message: String) -> RPCError { RPCError(code: .notFound, message: message) }
    static func invalid(_ message: String) -> RPCError { RPCError(code: .invalidArgument, message: message) }
    static func failedPrecondition(_ message: String) -> RPCError {
        RPCError(code: .failedPrecondition, message: message)
    }
    static func unimplemented(_ method: String) -> RPCError {
        RPCError(code: .unimplemented, message: "\(method) is not implemented by Berth")
    }

    /// An engine error as the status the CRI expects for it.
    static func from(_ error: EngineError, _ context: String) -> RPCError {
        let message = "\(context): \(error)"
        switch error {
        case .noSuchContainer, .noSuchImage, .noSuchVolume, .noSuchNetwork:
            return RPCError(code: .notFound, message: message)
        case .invalidArgument: return RPCError(code: .invalidArgument, message: message)
        case .nameInUse: return RPCError(code: .alreadyExists, message: message)
        case .conflict: return RPCError(code: .failedPrecondition, message: message)
        case .image(let image): return from(image, context)
        default: return RPCError(code: .unknown, message: message)
        }
    }

    static func from(_ error: ImageError, _ context: String) -> RPCError {
        let message = "\(context): \(error)"
        switch error {
        case .notFound: return RPCError(code: .notFound, message: message)
        case .invalidReference: return RPCError(code: .invalidArgument, message: message)
        case .authentication: return RPCError(code: .unauthenticated, message: message)
        case .inUse: return RPCError(code: .failedPrecondition, message: message)
        default: return RPCError(code: .unknown, message: message)
        }
    }

    static func from(_ error: SystemCallError, _ context: String) -> RPCError {
        RPCError(code: .unknown, message: "\(context): \(error)")
    }
}
