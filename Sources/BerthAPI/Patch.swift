/// The three patch formats kubectl sends: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
/// Kubernetes' strategic merge patch (lists merged by key, `$patch` / `$retainKeys` /
/// `$deleteFromPrimitiveList` / `$setElementOrder` directives).
public enum Patch {
    // MARK: merge patch
    public static func merge(_ target: JSON, _ patch: JSON) -> JSON {
        guard case .object(let p) = patch else { return patch }
        var result = target.object ?? [:]
        for (k, v) in p {
            if v == .null { result.removeValue(forKey: k) } else { result[k] = merge(result[k] ?? .null, v) }
        }
        return .object(result)
    }

    // MARK: strategic merge patch

    /// Applies a strategic merge patch. With the kind's `schema`, lists merge as the Go types' patch
    /// tags say (by merge key, as sets, or replaced whole); without one (a path the schema does not
    /// declare) a list is replaced whole.
    static func strategic(_ target: JSON, _ patch: JSON, schema: Schema?) throws -> JSON {
        guard case .object(var p) = patch else { return patch }
        if let directive = p["$patch"]?.string {
            p.removeValue(forKey: "$patch")
            switch directive {
            case "replace": return .object(p)
            case "delete": return .null
            case "merge": break
            default: throw APIError.badRequest("unknown patch type: \(directive)")
            }
        }
        var result = target.object ?? [:]
        var retainKeys: [String]?
        for (k, v) in p {
            if k.hasPrefix("$setElementOrder/") { continue }
            if k == "$retainKeys" { retainKeys = (v.array ?? []).compactMap(\.string); continue }
            if k.hasPrefix("$deleteFromPrimitiveList/") {
                let field = String(k.dropFirst("$deleteFromPrimitiveList/".count))
                let remove = Set(v.array ?? [])
                if let list = result[field]?.array { result[field] = .array(list.filter { !remove.contains($0) }) }
                continue
            }
            if v == .null { result.removeValue(forKey: k); continue }
            let cur = result[k] ?? .null
            let member = schema?.member(k)
            switch v {
            case .object:
                let merged = try strategic(cur.object == nil ? .object([:]) : cur, v, schema: member)
                if merged == .null { result.removeValue(forKey: k) } else { result[k] = merged }
            case .array(let items):
                result[k] = try mergeList(field: k, cur.array ?? [], items, schema: member)
            default:
                result[k] = v
            }
        }
        if let retainKeys {
            let keep = Set(retainKeys)
            for k in result.keys where !keep.contains(k) && !p.keys.contains(k) { result.removeValue(forKey: k) }
        }
        return .object(result)
    }

    static func mergeList(field: String, _ cur: [JSON], _ patch: [JSON], schema: Schema?) throws -> JSON {
        // A `{"$patch": "replace"}` element replaces the whole list with the other elements.
        if patch.contains(where: { $0["$patch"].string == "replace" && $0.object?.count == 1 }) {
            return .array(patch.filter { !($0["$patch"].string == "replace" && $0.object?.count == 1) })
        }
        var key: String?
        var element: Schema?
        var mergesAsSet = false
        if case .array(let inner, let mergeKey, let strategy)? = schema {
            let merges = strategy?.split(separator: ",").contains("merge") ?? false
            key = merges ? mergeKey : nil
            mergesAsSet = merges && mergeKey == nil
            element = inner.resolved
        }
        if mergesAsSet {
            var out = cur
            for v in patch where !out.contains(v) { out.append(v) }
            return .array(out)
        }
        guard let key, patch.allSatisfy({ $0.object != nil }) else {
            return .array(patch)
        }
        var out = cur
        for item in patch {
            let kv = item[key]
            let idx = out.firstIndex { $0[key] == kv }
            if item["$patch"].string == "delete" {
                if let idx { out.remove(at: idx) }
                continue
            }
            if let idx {
                out[idx] = try strategic(out[idx], item, schema: element)
            } else {
                var clean = item
                clean["$patch"] = .null
                out.append(clean)
            }
        }
        return .array(out)
    }

    // MARK: JSON patch

    public static func jsonPatch(_ target: JSON, _ ops: JSON) throws -> JSON {
        guard let list = ops.array else {
            throw APIError.badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        }
        var doc = target
        for op in list {
            guard let kind = op["op"].string, let path = op["path"].string else {
                throw APIError(
                    code: 422, reason: "Invalid",
                    message: "the server rejected our request due to an error in our request: missing op or path")
            }
            let ptr = try pointer(path)
            switch kind {
            case "add": doc = try set(doc, ptr, op["value"], insert: true)
            case "replace":
                _ = try get(doc, ptr, path)
                doc = try set(doc, ptr, op["value"], insert: false)
            case "remove": doc = try remove(doc, ptr, path)
            case "move", "copy":
                guard let from = op["from"].string else { throw APIError.badRequest("missing from") }
                let fp = try pointer(from)
                let v = try get(doc, fp, from)
                if kind == "move" { doc = try remove(doc, fp, from) }
                doc = try set(doc, ptr, v, insert: true)
            case "test":
                if try get(doc, ptr, path) != op["value"] {
                    throw APIError(
                        code: 422, reason: "Invalid",
                        message:
                            "the server rejected our request due to an error in our request: testing value \(path) failed"
                    )
                }
            default: throw APIError.badRequest("Unexpected kind: \(kind)")
            }
        }
        return doc
    }

    static func pointer(_ p: String) throws -> [String] {
        if p.isEmpty { return [] }
        guard p.hasPrefix("/") else { throw APIError.badRequest("JSON pointer must start with '/': \(p)") }
        return p.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }
    static func missing(_ path: String) -> APIError {
        APIError(
            code: 422, reason: "Invalid",
            message:
                "the server rejected our request due to an error in our request: doc is missing path: \"\(path)\": missing value"
        )
    }
    static func get(_ doc: JSON, _ ptr: [String], _ path: String) throws -> JSON {
        var cur = doc
        for t in ptr {
            switch cur {
            case .object(let o): guard let v = o[t] else { throw missing(path) }; cur = v
            case .array(let a): guard let i = Int(t), i >= 0, i < a.count else { throw missing(path) }; cur = a[i]
            default: throw missing(path)
            }
        }
        return cur
    }
    static func set(_ doc: JSON, _ ptr: [String], _ value: JSON, insert: Bool) throws -> JSON {
        guard let t = ptr.first else { return value }
        let rest = Array(ptr.dropFirst())
        switch doc {
        case .object(var o):
            if rest.isEmpty {
                o[t] = value
            } else {
                guard let child = o[t] else { throw missing("/" + ptr.joined(separator: "/")) }
                o[t] = try set(child, rest, value, insert: insert)
            }
            return .object(o)
        case .array(var a):
            if rest.isEmpty {
                if t == "-" { a.append(value); return .array(a) }
                guard let i = Int(t), i >= 0, i <= a.count, insert || i < a.count else {
                    throw missing("/" + ptr.joined(separator: "/"))
                }
                if insert { a.insert(value, at: i) } else { a[i] = value }
            } else {
                guard let i = Int(t), i >= 0, i < a.count else { throw missing("/" + ptr.joined(separator: "/")) }
                a[i] = try set(a[i], rest, value, insert: insert)
            }
            return .array(a)
        default:
            throw missing("/" + ptr.joined(separator: "/"))
        }
    }
    static func remove(_ doc: JSON, _ ptr: [String], _ path: String) throws -> JSON {
        guard let t = ptr.first else { return .null }
        let rest = Array(ptr.dropFirst())
        switch doc {
        case .object(var o):
            guard let child = o[t] else { throw missing(path) }
            if rest.isEmpty { o.removeValue(forKey: t) } else { o[t] = try remove(child, rest, path) }
            return .object(o)
        case .array(var a):
            guard let i = Int(t), i >= 0, i < a.count else { throw missing(path) }
            if rest.isEmpty { a.remove(at: i) } else { a[i] = try remove(a[i], rest, path) }
            return .array(a)
        default: throw missing(path)
        }
    }

    // MARK: server-side apply field sets

    /// The `fieldsV1` set of an applied configuration (upstream's structured-merge-diff encoding:
    /// `f:<field>` for map fields, `k:{"<key>":<value>}` for keyed list items, `.` for the item itself).
    /// A list is keyed by its merge key in the kind's `schema` (the Go types' `patchMergeKey`, which is
    /// the list-map key of the served lists); a list without one is one field, as an atomic list is.
    static func fieldSet(_ obj: JSON, schema: Schema?, top: Bool = true) -> JSON {
        switch obj {
        case .object(let o):
            var out: [String: JSON] = [:]
            for (k, v) in o where !(top && ["apiVersion", "kind"].contains(k)) {
                if top && k == "metadata" {
                    var m: [String: JSON] = [:]
                    for mk in ["labels", "annotations"] {
                        if let mv = v[mk].object { m["f:" + mk] = .object(mv.mapValues { _ in [:] }) }
                    }
                    if !m.isEmpty { out["f:metadata"] = .object(m) }
                    continue
                }
                out["f:" + k] = fieldSet(v, schema: schema?.member(k), top: false)
            }
            return .object(out)
        case .array(let items):
            guard case .array(let inner, let key?, _)? = schema, items.allSatisfy({ !$0[key].isNull }) else {
                return [:]
            }
            var out: [String: JSON] = [:]
            for item in items {
                var child = fieldSet(item, schema: inner.resolved, top: false).object ?? [:]
                child["."] = [:]
                out["k:" + JSON.object([key: item[key]]).text] = .object(child)
            }
            return .object(out)
        default:
            return [:]
        }
    }
}

import Foundation
