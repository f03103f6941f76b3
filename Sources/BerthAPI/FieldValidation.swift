import BerthKube
import Foundation

/// The `fieldValidation` query parameter of create, update and patch (kube-apiserver's
/// server-side field validation): what to do with fields a built-in kind does not have.
enum FieldValidation: String {
    /// Drop them silently.
    case ignore = "Ignore"
    /// Drop them and say so in a `Warning` header (the default; kubectl prints it).
    case warn = "Warn"
    /// Refuse the request with a 400 naming them.
    case strict = "Strict"

    init(_ call: Call) throws {
        guard let given = call.query["fieldValidation"], !given.isEmpty else {
            self = .warn
            return
        }
        guard let value = FieldValidation(rawValue: given) else {
            throw APIError.badRequest(
                "fieldValidation: Unsupported value: \"\(given)\": supported values: \"Ignore\", \"Strict\", \"Warn\"")
        }
        self = value
    }
}

/// Warnings a request produced, sent back as `Warning: 299 - "…"` headers (RFC 7234 warn-code 299,
/// as kube-apiserver sends them). A reference, so the decoding steps deep inside a request can add to
/// the one the response is built from.
final class RequestWarnings: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []

    func add(_ message: String) { lock.withLock { if !messages.contains(message) { messages.append(message) } } }
    var all: [String] { lock.withLock { messages } }

    /// One header value per warning, quoted as RFC 7230 wants (backslash before `"` and `\`).
    var headerValues: [String] {
        all.map { message in
            let quoted = message.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
                of: "\"", with: "\\\"")
            return "299 - \"\(quoted)\""
        }
    }
}

/// Which served resources have a generated type (every built-in kind; custom resources will not).
enum KubeKinds {
    static func hasModel(_ r: ResourceType) -> Bool { KubeTypes.type(apiVersion: r.apiVersion, kind: r.kind) != nil }
}

extension Handler {
    /// kube-apiserver decodes a built-in kind into its Go type, which has no place for a field it does
    /// not know: the field is gone from what is stored. Berth decodes the body with the generated model
    /// (BerthKube), which reports every such field by path, and prunes them from the tree it stores —
    /// warning (`Warn`, the default), refusing (`Strict`) or silently (`Ignore`). A body the model cannot
    /// decode is left to the type checks that follow, which name the field in Go's words.
    func pruneUnknownFields(_ object: JSON, _ r: ResourceType, _ call: Call) throws -> JSON {
        if let custom = r.custom { return try custom.pruneUnknownFields(object, r, call) }
        let validation = try FieldValidation(call)
        guard let type = KubeTypes.type(apiVersion: r.apiVersion, kind: r.kind) else { return object }
        var decoder = KubeJSONDecoder(collectsUnknownFields: true)
        guard (try? type.init(kubeJSON: object, &decoder)) != nil else { return object }
        let unknown = decoder.unknownFieldPaths
        if unknown.isEmpty { return object }
        let names = unknown.map { "unknown field \"\(KubeJSONDecoder.join($0))\"" }
        switch validation {
        case .strict: throw APIError.badRequest("strict decoding error: " + names.joined(separator: ", "))
        case .warn: for name in names { call.warnings.add(name) }
        case .ignore: break
        }
        var pruned = object
        for path in unknown { Self.remove(path[...], from: &pruned) }
        return pruned
    }

    /// Removes one member found by path; an index component (`[2]`) steps into an array.
    private static func remove(_ path: ArraySlice<String>, from tree: inout JSON) {
        guard let first = path.first else { return }
        let rest = path.dropFirst()
        switch tree {
        case .object(var members):
            if rest.isEmpty {
                members.removeValue(forKey: first)
            } else if var child = members[first] {
                remove(rest, from: &child)
                members[first] = child
            }
            tree = .object(members)
        case .array(var items):
            guard first.hasPrefix("["), first.hasSuffix("]"), let index = Int(first.dropFirst().dropLast()),
                items.indices.contains(index)
            else { return }
            remove(rest, from: &items[index])
            tree = .array(items)
        default: return
        }
    }
}
