import Foundation

/// The form of a response, chosen from the request's `Accept` as kube-apiserver's
/// `NegotiateOutputMediaType` chooses it: media ranges are tried in order of preference (q), and the
/// first the endpoint can produce wins. A range that asks for a conversion (`as=…;g=…;v=…`) is only
/// acceptable where the endpoint offers that conversion — a Table only for a resource's objects and
/// lists, an APIGroupDiscoveryList only for `/api` and `/apis` — so `as=Table` alone at an endpoint
/// without tables is 406 Not Acceptable, and with `application/json` after it, plain JSON.
enum Rendering: Equatable, Sendable {
    case json
    case yaml
    /// meta.k8s.io/v1 Table (server-side printing).
    case table
    /// apidiscovery.k8s.io APIGroupDiscoveryList at this version (v2, or v2beta1 for client-go ≤ 1.29).
    case discovery(version: String)
    /// application/vnd.kubernetes.protobuf (`Protobuf.encodeObject`), for kinds with a message.
    case protobuf

    /// What an endpoint can produce besides JSON and YAML.
    struct Offers: Sendable {
        var table = false
        var discovery: [String] = []
        /// Whether its objects have a protobuf form (built-in kinds; custom resources have none upstream).
        var protobuf = false
        static let plain = Offers()
        static let aggregatedDiscovery = Offers(discovery: ["v2", "v2beta1"])
        /// Built-in answers that are no resource's objects: reviews, Scale, Status (bindings, evictions).
        static let builtInAnswers = Offers(protobuf: true)
        /// A built-in kind's objects: tables, and protobuf when `kind` has a message.
        static func resource(apiVersion: String, kind: String) -> Offers {
            Offers(table: true, protobuf: Protobuf.encodes(apiVersion: apiVersion, kind: kind))
        }
    }

    static func negotiate(_ accept: String, _ offers: Offers) throws -> Rendering {
        let ranges = MediaRange.parse(accept)
        if ranges.isEmpty { return .json }
        for m in ranges where m.q > 0 {
            if let r = m.rendering(offers) { return r }
        }
        throw APIError(
            code: 406, reason: "NotAcceptable",
            message: "only the following media types are accepted: application/json, application/yaml")
    }
}

/// One entry of an `Accept` header.
struct MediaRange {
    var type: String
    var subtype: String
    var params: [String: String]
    var q: Double

    /// Entries in order of preference: by q, then as written (goautoneg's order for equal q).
    static func parse(_ header: String) -> [MediaRange] {
        var out: [MediaRange] = []
        for entry in header.split(separator: ",") {
            var parts = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !parts.isEmpty, !parts[0].isEmpty else { continue }
            let full = parts.removeFirst().lowercased()
            let ts = full.split(separator: "/", maxSplits: 1).map(String.init)
            var params: [String: String] = [:]
            var q = 1.0
            for p in parts {
                let kv = p.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2 else { continue }
                if kv[0] == "q" { q = Double(kv[1]) ?? 0 } else { params[kv[0]] = kv[1] }
            }
            out.append(MediaRange(type: ts[0], subtype: ts.count > 1 ? ts[1] : "*", params: params, q: q))
        }
        return out.enumerated().sorted { a, b in
            a.element.q != b.element.q ? a.element.q > b.element.q : a.offset < b.offset
        }
        .map(\.element)
    }

    /// The rendering this range accepts from an endpoint with `offers`, or nil.
    func rendering(_ offers: Rendering.Offers) -> Rendering? {
        let base: Rendering
        switch (type, subtype) {
        case ("application", "yaml"): base = .yaml
        // Where there is no protobuf form (custom resources, discovery) JSON answers a protobuf range:
        // client-go lists JSON after it anyway, and a protobuf-only client reads the Content-Type.
        case ("application", "vnd.kubernetes.protobuf"): base = offers.protobuf ? .protobuf : .json
        case ("application", "json"), ("application", "*"), ("*", "*"):
            base = .json
        default: return nil
        }
        guard params["as"] != nil || params["g"] != nil || params["v"] != nil else { return base }
        switch (params["as"], params["g"], params["v"]) {
        case ("Table"?, "meta.k8s.io"?, "v1"?), ("Table"?, "meta.k8s.io"?, "v1beta1"?):
            return offers.table && subtype != "vnd.kubernetes.protobuf" ? .table : nil
        case ("APIGroupDiscoveryList"?, "apidiscovery.k8s.io"?, let v?) where offers.discovery.contains(v):
            return .discovery(version: v)
        case ("PartialObjectMetadata"?, "meta.k8s.io"?, _), ("PartialObjectMetadataList"?, "meta.k8s.io"?, _):
            // Not converted: resources answer their full objects in JSON, which metadata clients decode
            // (they also list plain JSON after this range). Elsewhere there is nothing to convert.
            return offers.table ? (base == .protobuf ? .json : base) : nil
        default:
            return nil
        }
    }
}
