/// Label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and field selectors (`f=v,g!=w`).
public struct LabelSelector: Sendable {
    enum Req: Sendable {
        case eq(String, String), ne(String, String), in_(String, Set<String>), notIn(String, Set<String>)
        case exists(String), notExists(String)
    }
    var reqs: [Req] = []
    public var isEmpty: Bool { reqs.isEmpty }

    public init(_ text: String) throws {
        var parts: [String] = []
        var cur = ""; var depth = 0
        for c in text {
            if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
            if c == "," && depth == 0 { parts.append(cur); cur = "" } else { cur.append(c) }
        }
        parts.append(cur)
        for raw in parts {
            let p = raw.trimmingCharacters(in: .whitespaces)
            if p.isEmpty { continue }
            if let r = p.range(of: " notin ") {
                reqs.append(.notIn(String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces), try Self.set(p[r.upperBound...])))
            } else if let r = p.range(of: " in ") {
                reqs.append(.in_(String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces), try Self.set(p[r.upperBound...])))
            } else if let r = p.range(of: "!=") {
                reqs.append(.ne(String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces), String(p[r.upperBound...]).trimmingCharacters(in: .whitespaces)))
            } else if let r = p.range(of: "==") ?? p.range(of: "=") {
                reqs.append(.eq(String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces), String(p[r.upperBound...]).trimmingCharacters(in: .whitespaces)))
            } else if p.hasPrefix("!") {
                reqs.append(.notExists(String(p.dropFirst()).trimmingCharacters(in: .whitespaces)))
            } else {
                guard Validation.isQualifiedName(p) else { throw APIError.badRequest("unable to parse requirement: invalid label key \"\(p)\"") }
                reqs.append(.exists(p))
            }
        }
    }
    /// From a LabelSelector object (matchLabels + matchExpressions).
    public init(object: JSON) {
        for (k, v) in object["matchLabels"].stringMap.sorted(by: { $0.key < $1.key }) { reqs.append(.eq(k, v)) }
        for e in object["matchExpressions"].array ?? [] {
            let key = e["key"].string ?? ""
            let values = Set((e["values"].array ?? []).compactMap(\.string))
            switch e["operator"].string {
            case "In": reqs.append(.in_(key, values))
            case "NotIn": reqs.append(.notIn(key, values))
            case "Exists": reqs.append(.exists(key))
            case "DoesNotExist": reqs.append(.notExists(key))
            default: break
            }
        }
    }
    static func set(_ s: Substring) throws -> Set<String> {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("("), t.hasSuffix(")") else { throw APIError.badRequest("unable to parse requirement: expected (values) in \"\(s)\"") }
        return Set(t.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }
    public func matches(_ labels: [String: String]) -> Bool {
        reqs.allSatisfy { r in
            switch r {
            case .eq(let k, let v): return labels[k] == v
            case .ne(let k, let v): return labels[k] != v
            case .in_(let k, let vs): return labels[k].map(vs.contains) ?? false
            case .notIn(let k, let vs): return labels[k].map { !vs.contains($0) } ?? true
            case .exists(let k): return labels[k] != nil
            case .notExists(let k): return labels[k] == nil
            }
        }
    }
    /// Text form, as kubectl shows it.
    public var text: String {
        reqs.map { r in
            switch r {
            case .eq(let k, let v): return "\(k)=\(v)"
            case .ne(let k, let v): return "\(k)!=\(v)"
            case .in_(let k, let vs): return "\(k) in (\(vs.sorted().joined(separator: ",")))"
            case .notIn(let k, let vs): return "\(k) notin (\(vs.sorted().joined(separator: ",")))"
            case .exists(let k): return k
            case .notExists(let k): return "!\(k)"
            }
        }.joined(separator: ",")
    }
}

public struct FieldSelector: Sendable {
    var reqs: [(field: String, value: String, equal: Bool)] = []
    public init(_ text: String) throws {
        for raw in text.split(separator: ",") {
            let p = String(raw)
            if let r = p.range(of: "!=") {
                reqs.append((String(p[..<r.lowerBound]), String(p[r.upperBound...]), false))
            } else if let r = p.range(of: "==") ?? p.range(of: "=") {
                reqs.append((String(p[..<r.lowerBound]), String(p[r.upperBound...]), true))
            } else {
                throw APIError.badRequest("invalid selector: '\(text)'; can't understand '\(p)'")
            }
        }
    }
    public var isEmpty: Bool { reqs.isEmpty }
    /// Fields are dotted paths into the object (metadata.name, spec.nodeName, status.phase, …).
    public func matches(_ obj: JSON) -> Bool {
        reqs.allSatisfy { r in
            let v = obj[r.field.split(separator: ".").map(String.init)]
            var s: String
            switch v {
            case .string(let x): s = x
            case .int(let i): s = String(i)
            case .bool(let b): s = b ? "true" : "false"
            default: s = ""
            }
            if r.field == "metadata.namespace" && s.isEmpty { s = "" }
            return (s == r.value) == r.equal
        }
    }
}

import Foundation
