/// When an update makes `metadata.generation` move, as kube-apiserver's strategies decide it.
///
/// Upstream compares the decoded, defaulted specs with `apiequality.Semantic.DeepEqual`, under which an
/// empty map or list equals an absent one and a zero-valued struct equals an omitted one. Berth keeps
/// objects as JSON trees, so a spec a client sends without the server's defaults, or with `resources: {}`
/// where the stored object has none (what Go's typed clients write), must not count as a change: a
/// generation that moves on every identical PUT makes the controller write status back each time, and
/// the client's next update then conflicts (409) where kube-apiserver accepts it.
enum Generation {
    /// Whether the update from `old` to `new` (both defaulted) changes the spec upstream would compare.
    static func specChanged(old: JSON, new: JSON) -> Bool {
        semantic(old["spec"]) != semantic(new["spec"])
    }

    /// `value` with nulls, empty objects and empty arrays removed at every depth.
    static func semantic(_ value: JSON) -> JSON {
        switch value {
        case .object(let o):
            var out: [String: JSON] = [:]
            for (k, v) in o {
                let s = semantic(v)
                if !isEmpty(s) { out[k] = s }
            }
            return .object(out)
        case .array(let a):
            return .array(a.map(semantic))
        default:
            return value
        }
    }

    private static func isEmpty(_ v: JSON) -> Bool {
        switch v {
        case .null: return true
        case .object(let o): return o.isEmpty
        case .array(let a): return a.isEmpty
        default: return false
        }
    }
}
