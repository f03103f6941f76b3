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
                reqs.append(
                    .notIn(
                        String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces),
                        try Self.set(p[r.upperBound...])))
            } else if let r = p.range(of: " in ") {
                reqs.append(
                    .in_(
                        String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces),
                        try Self.set(p[r.upperBound...])))
            } else if let r = p.range(of: "!=") {
                reqs.append(
                    .ne(
                        String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces),
                        String(p[r.upperBound...]).trimmingCharacters(in: .whitespaces)))
            } else if let r = p.range(of: "==") ?? p.range(of: "=") {
                reqs.append(
                    .eq(
                        String(p[..<r.lowerBound]).trimmingCharacters(in: .whitespaces),
                        String(p[r.upperBound...]).trimmingCharacters(in: .whitespaces)))
            } else if p.hasPrefix("!") {
                reqs.append(.notExists(String(p.dropFirst()).trimmingCharacters(in: .whitespaces)))
            } else {
                guard Validation.isQualifiedName(p) else {
                    throw APIError.badRequest("unable to parse requirement: invalid label key \"\(p)\"")
                }
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
        guard t.hasPrefix("("), t.hasSuffix(")") else {
            throw APIError.badRequest("unable to parse requirement: expected (values) in \"\(s)\"")
        }
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
    /// Text form, as kubectl shows it. Requirements come sorted by key, as upstream's selector keeps
    /// them (`internalSelector.Add`), so a Scale's status.selector reads the same as kube-apiserver's.
    public var text: String {
        let sorted = reqs.enumerated().sorted { a, b in
            Self.key(a.element) != Self.key(b.element) ? Self.key(a.element) < Self.key(b.element) : a.offset < b.offset
        }.map(\.element)
        return sorted.map { r in
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
    private static func key(_ r: Req) -> String {
        switch r {
        case .eq(let k, _), .ne(let k, _), .in_(let k, _), .notIn(let k, _), .exists(let k), .notExists(let k): return k
        }
    }
}

/// A field selector (`f=v,g!=w`, kube's `fields.ParseSelector`) over the field labels `r`'s kind
/// supports (`FieldLabels`). `\,` `\=` and `\\` escape those characters in a value.
public struct FieldSelector: Sendable {
    struct Requirement: Sendable { var label: String; var value: String; var equal: Bool; var read: FieldLabels.Getter }
    var reqs: [Requirement] = []

    public init(_ text: String, for r: ResourceType) throws {
        for term in Self.terms(text) where !term.isEmpty {
            guard let (lhs, op, rhs) = Self.split(term) else {
                throw APIError.badRequest("invalid selector: '\(text)'; can't understand '\(term)'")
            }
            let read = try FieldLabels.getter(lhs, for: r)
            reqs.append(Requirement(label: lhs, value: try Self.unescape(rhs), equal: op != "!=", read: read))
        }
    }
    public var isEmpty: Bool { reqs.isEmpty }

    public func matches(_ obj: JSON) -> Bool {
        reqs.allSatisfy { ($0.read(obj) == $0.value) == $0.equal }
    }

    /// Splits on commas that no backslash escapes.
    static func terms(_ text: String) -> [String] {
        var out: [String] = [], cur = "", escaped = false
        for c in text {
            if escaped { cur.append(c); escaped = false; continue }
            if c == "\\" { cur.append(c); escaped = true; continue }
            if c == "," { out.append(cur); cur = "" } else { cur.append(c) }
        }
        out.append(cur)
        return out
    }
    /// At the first position where `!=`, `==` or `=` begins (in that order of preference), as upstream.
    static func split(_ term: String) -> (String, String, String)? {
        var i = term.startIndex
        while i < term.endIndex {
            for op in ["!=", "==", "="] where term[i...].hasPrefix(op) {
                return (String(term[..<i]), op, String(term[term.index(i, offsetBy: op.count)...]))
            }
            i = term.index(after: i)
        }
        return nil
    }
    static func unescape(_ v: String) throws -> String {
        var out = "", escaped = false
        for c in v {
            if escaped {
                guard c == "\\" || c == "," || c == "=" else {
                    throw APIError.badRequest("invalid field selector: invalid escape sequence: \\\(c)")
                }
                out.append(c); escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "," || c == "=" {
                throw APIError.badRequest("invalid field selector: unescaped character in value: \(c)")
            } else {
                out.append(c)
            }
        }
        if escaped { throw APIError.badRequest("invalid field selector: invalid escape sequence: \\") }
        return out
    }
}

import Foundation
