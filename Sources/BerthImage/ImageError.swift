import BerthOS

/// Everything that can go wrong in the image layer, each case naming the object and the cause.
public enum ImageError: Error, CustomStringConvertible, Sendable {
    case invalidReference(String, String)
    case notFound(String)
    case digestMismatch(what: String, expected: Digest, actual: Digest)
    case sizeMismatch(what: String, expected: Int64, actual: Int64)
    case unsupportedMediaType(String, what: String)
    case noMatchingPlatform(String, available: [String])
    case registry(status: Int, url: String, message: String)
    case authentication(String)
    case transport(String, cause: String)
    case invalidManifest(String, String)
    case hostileLayer(String, path: String, why: String)
    case corruptLayer(String, String)
    case system(SystemCallError)
    case inUse(String, String)
    case storeInconsistent([String])
    /// Wraps a failure with the image it happened to, so every message names the image.
    indirect case pulling(String, ImageError)
    indirect case pushing(String, ImageError)

    public var description: String {
        switch self {
        case .invalidReference(let r, let why): return "invalid reference \"\(r)\": \(why)"
        case .notFound(let what): return "\(what): not found"
        case .digestMismatch(let what, let e, let a): return "\(what): digest mismatch (expected \(e), got \(a))"
        case .sizeMismatch(let what, let e, let a): return "\(what): size mismatch (expected \(e) bytes, got \(a))"
        case .unsupportedMediaType(let m, let what): return "\(what): unsupported media type \(m)"
        case .noMatchingPlatform(let p, let available):
            return
                "no manifest for platform \(p) (available: \(available.isEmpty ? "none" : available.joined(separator: ", ")))"
        case .registry(let status, let url, let message):
            return "registry answered \(status) for \(url)\(message.isEmpty ? "" : ": " + message)"
        case .authentication(let why): return "authentication failed: \(why)"
        case .transport(let url, let cause): return "\(url): \(cause)"
        case .invalidManifest(let what, let why): return "\(what): invalid manifest: \(why)"
        case .hostileLayer(let layer, let path, let why): return "layer \(layer): refusing entry \"\(path)\": \(why)"
        case .corruptLayer(let layer, let why): return "layer \(layer): \(why)"
        case .system(let e): return e.description
        case .inUse(let what, let by): return "\(what) is in use by \(by)"
        case .storeInconsistent(let problems): return "store inconsistent:\n  " + problems.joined(separator: "\n  ")
        case .pulling(let image, let cause): return "pulling \(image): \(cause)"
        case .pushing(let image, let cause): return "pushing \(image): \(cause)"
        }
    }

    /// The innermost cause.
    public var cause: ImageError {
        switch self {
        case .pulling(_, let c), .pushing(_, let c): return c.cause
        default: return self
        }
    }

    static func wrap(_ error: any Error) -> ImageError {
        if let e = error as? ImageError { return e }
        if let e = error as? SystemCallError { return .system(e) }
        return .transport("unexpected failure", cause: "\(error)")
    }
}
