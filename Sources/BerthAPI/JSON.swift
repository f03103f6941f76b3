@_exported import BerthJSON
import Yams

// API objects are JSON trees (BerthJSON's `JSON`, the one JSON value of every layer), so every kind and
// unknown fields round-trip unchanged. Re-exported: BerthAPI's users (BerthControl, the daemons, tests)
// read and build objects with it. What only the API server needs, the YAML bridge, is here.

extension JSON {
    /// Parses YAML (or JSON, a YAML subset) into a JSON tree.
    public static func parseYAML(_ text: String) throws -> JSON {
        do {
            // The basic resolver: tags are not read (below, plain scalars are typed as go-yaml types
            // them), and the default one compiles and runs a regular expression per scalar — which
            // also pulls ICU's pages into every process that reads a kubeconfig.
            guard let node = try Yams.compose(yaml: text, .basic) else { return .null }
            // Aliases share their anchor's node, so a few hundred bytes can stand for billions of values
            // ("billion laughs"); the tree is capped as go-yaml caps it for kube-apiserver.
            var budget = max(400_000, 4 * text.utf8.count)
            return try fromYAML(node, budget: &budget, depth: 0)
        } catch let e as JSONParseError { throw e } catch {
            throw JSONParseError(offset: 0, reason: "yaml: \(error)")
        }
    }
    private static func fromYAML(_ node: Node, budget: inout Int, depth: Int) throws -> JSON {
        budget -= 1
        guard budget >= 0 else { throw JSONParseError(offset: 0, reason: "yaml: document contains excessive aliasing") }
        guard depth < 200 else { throw JSONParseError(offset: 0, reason: "yaml: exceeded max depth of 200") }
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                switch s.string {
                case "null", "Null", "NULL", "~", "": return .null
                case "true", "True", "TRUE": return .bool(true)
                case "false", "False", "FALSE": return .bool(false)
                default:
                    if let i = Int64(s.string) { return .int(i) }
                    if let d = Double(s.string), s.string.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true {
                        return .double(d)
                    }
                }
            }
            return .string(s.string)
        case .mapping(let m):
            var o: [String: JSON] = [:]
            // `<<: *defaults` (YAML's merge key, as go-yaml reads it): the merged mappings' keys apply
            // unless the mapping sets them itself, wherever the `<<` stands.
            var merged: [String: JSON] = [:]
            for (k, v) in m {
                guard case .scalar(let ks) = k else { throw JSONParseError(offset: 0, reason: "yaml: non-scalar key") }
                let value = try fromYAML(v, budget: &budget, depth: depth + 1)
                if ks.string == "<<" && ks.style == .plain {
                    for source in (value.array ?? [value]).reversed() {
                        guard let fields = source.object else {
                            throw JSONParseError(
                                offset: 0, reason: "yaml: map merge requires map or sequence of maps as the value")
                        }
                        merged.merge(fields) { _, new in new }
                    }
                    continue
                }
                o[ks.string] = value
            }
            if !merged.isEmpty { o.merge(merged) { own, _ in own } }
            return .object(o)
        case .sequence(let seq):
            var items: [JSON] = []
            items.reserveCapacity(seq.count)
            for item in seq { items.append(try fromYAML(item, budget: &budget, depth: depth + 1)) }
            return .array(items)
        case .alias:
            throw JSONParseError(offset: 0, reason: "yaml: aliases are not supported")
        }
    }

    /// YAML text (for `Accept: application/yaml`).
    public func yaml() -> String {
        (try? Yams.serialize(node: yamlNode(), sortKeys: true)) ?? text
    }
    private func yamlNode() -> Node {
        switch self {
        case .null: return Node("null", Tag(.null))
        case .bool(let b): return Node(b ? "true" : "false", Tag(.bool))
        case .number(let text):
            // Integers as the digits; other numbers as Double's text, as the API server has always written them.
            if let i = Int64(text) { return Node(String(i), Tag(.int)) }
            return Node("\(Double(text) ?? 0)", Tag(.float))
        case .string(let s): return Node(s, Tag(.str), .doubleQuoted)
        case .array(let a): return .sequence(Node.Sequence(a.map { $0.yamlNode() }))
        case .object(let o):
            return .mapping(Node.Mapping(o.keys.sorted().map { (Node($0), o[$0]!.yamlNode()) }))
        }
    }
}
