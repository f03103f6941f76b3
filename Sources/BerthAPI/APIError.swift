/// A request failure rendered as a Kubernetes `Status` (reason + code as upstream uses them).
public struct APIError: Error, Sendable, CustomStringConvertible {
    public var code: Int
    public var reason: String
    public var message: String
    public var details: JSON = .null

    public init(code: Int, reason: String, message: String, details: JSON = .null) {
        self.code = code; self.reason = reason; self.message = message; self.details = details
    }
    public var description: String { "\(code) \(reason): \(message)" }

    /// A status passed on from another server (a node agent's answer): the reason its code stands for.
    public init(passingOn code: Int, message: String) {
        let reason =
            switch code {
            case 400: "BadRequest"
            case 403: "Forbidden"
            case 404: "NotFound"
            default: "InternalError"
            }
        self.init(code: code, reason: reason, message: message)
    }

    public var status: JSON {
        var s: JSON = [
            "kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure",
            "message": .string(message), "reason": .string(reason), "code": .int(Int64(code)),
        ]
        if details != .null { s["details"] = details }
        return s
    }

    static func details(_ r: ResourceType?, _ name: String?, causes: [JSON] = []) -> JSON {
        var d: JSON = [:]
        if let name { d["name"] = .string(name) }
        if let r {
            if !r.group.isEmpty { d["group"] = .string(r.group) }
            d["kind"] = .string(r.plural)
        }
        if !causes.isEmpty { d["causes"] = .array(causes) }
        return d
    }
    static func resourceLabel(_ r: ResourceType) -> String { r.group.isEmpty ? r.plural : "\(r.plural).\(r.group)" }

    public static func notFound(_ r: ResourceType, _ name: String) -> APIError {
        APIError(
            code: 404, reason: "NotFound", message: "\(resourceLabel(r)) \"\(name)\" not found",
            details: details(r, name))
    }
    public static func alreadyExists(_ r: ResourceType, _ name: String) -> APIError {
        APIError(
            code: 409, reason: "AlreadyExists", message: "\(resourceLabel(r)) \"\(name)\" already exists",
            details: details(r, name))
    }
    public static func conflict(_ r: ResourceType, _ name: String) -> APIError {
        APIError(
            code: 409, reason: "Conflict",
            message:
                "Operation cannot be fulfilled on \(resourceLabel(r)) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
            details: details(r, name))
    }
    /// One field error: `field`, `type` (upstream's FieldValueRequired, FieldValueInvalid …), detail.
    public struct Cause: Sendable {
        public var field: String; public var type: String; public var message: String
        public init(_ field: String, _ type: String, _ message: String) {
            self.field = field; self.type = type; self.message = message
        }
    }
    public static func invalid(_ r: ResourceType, _ name: String, _ causes: [Cause]) -> APIError {
        // Upstream's aggregate of field errors: one bare, several in brackets.
        let joined = causes.map { "\($0.field): \($0.message)" }.joined(separator: ", ")
        let text = causes.count == 1 ? joined : "[\(joined)]"
        // Upstream's NewInvalid names the Kind (not the resource) in details, which kubectl prints as
        // `The Deployment "web" is invalid: …`.
        var d = details(
            r, name,
            causes: causes.map {
                ["reason": .string($0.type), "message": .string($0.message), "field": .string($0.field)]
            })
        d["kind"] = .string(r.kind)
        return APIError(
            code: 422, reason: "Invalid",
            message: "\(r.kind)\(r.group.isEmpty ? "" : "." + r.group) \"\(name)\" is invalid: \(text)",
            details: d)
    }
    public static func badRequest(_ m: String) -> APIError { APIError(code: 400, reason: "BadRequest", message: m) }
    public static func methodNotAllowed(_ m: String) -> APIError {
        APIError(
            code: 405, reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource\(m.isEmpty ? "" : ": " + m)")
    }
    public static let unauthorized = APIError(code: 401, reason: "Unauthorized", message: "Unauthorized")
    public static func forbidden(_ m: String) -> APIError { APIError(code: 403, reason: "Forbidden", message: m) }
    public static func gone(_ m: String) -> APIError { APIError(code: 410, reason: "Expired", message: m) }
    public static let tooLarge = APIError(
        code: 413, reason: "RequestEntityTooLarge", message: "the request entity is too large")
    public static func unsupportedMediaType(_ t: String) -> APIError {
        APIError(
            code: 415, reason: "UnsupportedMediaType",
            message:
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got \(t))"
        )
    }
    /// A protobuf body of a kind the server has no protobuf schema for (see `Protobuf.kinds`).
    public static func unsupportedProtobuf(kind: String, apiVersion: String) -> APIError {
        let what =
            kind.isEmpty ? "an object with no kind" : "kind \(kind)\(apiVersion.isEmpty ? "" : " (\(apiVersion))")"
        return APIError(
            code: 415, reason: "UnsupportedMediaType",
            message:
                "the server cannot decode \(what) from application/vnd.kubernetes.protobuf; send it as application/json or application/yaml"
        )
    }
    public static func internalError(_ m: String) -> APIError {
        APIError(code: 500, reason: "InternalError", message: "Internal error occurred: \(m)")
    }
    public static func pathNotFound() -> APIError {
        APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
    }
}
