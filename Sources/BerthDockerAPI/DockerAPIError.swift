import BerthEngine
import BerthImage
import NIOHTTP1

/// An error as the Docker Engine API reports one: an HTTP status and `{"message": …}`. The status is
/// what clients branch on (the CLI's `inspect` moves on to the next object type on a 404), so each
/// engine error maps to the status dockerd gives for the same situation.
public struct DockerAPIError: Error, CustomStringConvertible, Sendable, Equatable {
    public var status: HTTPResponseStatus
    public var message: String

    public init(_ status: HTTPResponseStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code) \(message)" }

    public static func badRequest(_ message: String) -> DockerAPIError { DockerAPIError(.badRequest, message) }
    public static func notFound(_ message: String) -> DockerAPIError { DockerAPIError(.notFound, message) }
    public static func conflict(_ message: String) -> DockerAPIError { DockerAPIError(.conflict, message) }
    public static func notImplemented(_ message: String) -> DockerAPIError { DockerAPIError(.notImplemented, message) }

    /// Any error thrown while serving a request, as the API reports it.
    public static func from(_ error: any Error) -> DockerAPIError {
        switch error {
        case let api as DockerAPIError: return api
        case let engine as EngineError: return from(engine)
        case let image as ImageError: return from(image)
        default: return DockerAPIError(.internalServerError, "\(error)")
        }
    }

    static func from(_ error: EngineError) -> DockerAPIError {
        switch error {
        case .invalidArgument, .ambiguousPrefix: return .badRequest("\(error)")
        case .noSuchContainer, .noSuchVolume, .noSuchNetwork: return .notFound("\(error)")
        case .noSuchImage(let name): return .notFound("No such image: \(ImageNames.familiar(name))")
        case .nameInUse, .conflict: return .conflict("\(error)")
        // dockerd reports a program that cannot be started as a bad request; the CLI reads the
        // message ("executable file not found" → 127, "permission denied" → 126).
        case .cannotStart: return .badRequest("\(error)")
        case .image(let image): return from(image)
        case .runtimeFailed, .system, .network, .other: return DockerAPIError(.internalServerError, "\(error)")
        }
    }

    static func from(_ error: ImageError) -> DockerAPIError {
        switch error {
        case .invalidReference: return .badRequest("\(error)")
        case .notFound: return .notFound("\(error)")
        case .inUse: return .conflict("\(error)")
        case .pulling(let reference, .authentication):
            // Not a 401: that status makes the CLI prompt for a login and retry (it is /auth's answer).
            return DockerAPIError(
                .forbidden,
                "pull access denied for \(reference), repository does not exist or may require 'docker login': \(error)"
            )
        case .pulling(_, let cause), .pushing(_, let cause):
            let inner = from(cause)
            return DockerAPIError(inner.status, "\(error)")
        case .registry(let status, _, _) where status == 404: return .notFound("\(error)")
        case .authentication: return DockerAPIError(.unauthorized, "\(error)")
        default: return DockerAPIError(.internalServerError, "\(error)")
        }
    }
}
