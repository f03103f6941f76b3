/// The content of the proxy's nftables table, as data: its regular chains with their rules, and its
/// sets and maps with their elements. Kept between syncs so each sync sends nft only what changed
/// (kube-proxy's partial sync): a Service whose endpoints did not change costs nothing.
public struct NFTablesRuleset: Sendable, Equatable {
    /// A set or a map: its declaration (`type … ; flags …`) and its elements, in nft's syntax.
    public struct Collection: Sendable, Equatable {
        public enum Kind: String, Sendable { case set, map }
        public var kind: Kind
        public var declaration: String
        public var elements: [String]
    }

    /// Base chains: the hooks the table attaches to, with the rules that lead into the rest. They
    /// never change, and are made only when the table is (re)made.
    public struct BaseChain: Sendable, Equatable {
        public var name: String
        public var declaration: String
        public var rules: [String]
    }

    public var table: String
    public var comment: String
    public var baseChains: [BaseChain] = []
    public var chains: [String: [String]] = [:]
    public var collections: [String: Collection] = [:]

    public init(table: String, comment: String) {
        self.table = table
        self.comment = comment
    }

    /// One nft transaction (`nft -f`) taking the table from `previous` (what the kernel has, as the last
    /// successful sync left it) to this; nil: the table is made anew — emptied and rebuilt in the same
    /// transaction, so packets never see it half made. Established connections keep flowing either way:
    /// their translation lives in conntrack, not in the rules.
    public func transaction(from previous: NFTablesRuleset?) -> String {
        var out = ""
        out.reserveCapacity(128 * (chains.count + collections.count + 8))
        let t = "ip \(table)"
        guard let previous, previous.table == table, previous.baseChains == baseChains,
            previous.collections.allSatisfy({ name, old in
                collections[name].map { $0.kind == old.kind && $0.declaration == old.declaration } ?? true
            })
        else {
            // `add` first so `delete` has something to delete on a machine that never had the table.
            out += "add table \(t)\ndelete table \(t)\n"
            out += "add table \(t) { comment \"\(comment)\" ; }\n"
            for name in collections.keys.sorted() {
                let c = collections[name]!
                out += "add \(c.kind.rawValue) \(t) \(name) { \(c.declaration) ; }\n"
            }
            for name in chains.keys.sorted() { out += "add chain \(t) \(name)\n" }
            for base in baseChains { out += "add chain \(t) \(base.name) { \(base.declaration) ; }\n" }
            for name in chains.keys.sorted() {
                for rule in chains[name]! { out += "add rule \(t) \(name) \(rule)\n" }
            }
            for base in baseChains {
                for rule in base.rules { out += "add rule \(t) \(base.name) \(rule)\n" }
            }
            for name in collections.keys.sorted() where !collections[name]!.elements.isEmpty {
                let c = collections[name]!
                out += "add element \(t) \(name) { \(c.elements.joined(separator: ", ")) }\n"
            }
            return out
        }
        // Sets and chains first made, so rules and elements can refer to them; changed chains flushed
        // and refilled; maps whose elements changed flushed and refilled (a map is one element per
        // Service port, cheap beside the chains); what is gone deleted last, when nothing refers to it.
        for name in collections.keys.sorted() where previous.collections[name] == nil {
            let c = collections[name]!
            out += "add \(c.kind.rawValue) \(t) \(name) { \(c.declaration) ; }\n"
        }
        let sortedChains = chains.keys.sorted()
        for name in sortedChains where previous.chains[name] == nil { out += "add chain \(t) \(name)\n" }
        for name in sortedChains {
            let rules = chains[name]!
            guard let old = previous.chains[name] else {
                for rule in rules { out += "add rule \(t) \(name) \(rule)\n" }
                continue
            }
            if old == rules { continue }
            out += "flush chain \(t) \(name)\n"
            for rule in rules { out += "add rule \(t) \(name) \(rule)\n" }
        }
        for name in collections.keys.sorted() {
            let c = collections[name]!
            let old = previous.collections[name]
            if old?.elements == c.elements { continue }
            // A dynamic set (session affinity) keeps its clients: its elements are the kernel's own.
            if c.declaration.contains("dynamic") && old != nil { continue }
            if old != nil { out += "flush \(c.kind.rawValue) \(t) \(name)\n" }
            if !c.elements.isEmpty { out += "add element \(t) \(name) { \(c.elements.joined(separator: ", ")) }\n" }
        }
        // Chains that go may still jump to one another: all are emptied before any is deleted.
        let gone = previous.chains.keys.sorted().filter { chains[$0] == nil }
        for name in gone { out += "flush chain \(t) \(name)\n" }
        for name in gone { out += "delete chain \(t) \(name)\n" }
        for name in previous.collections.keys.sorted() where collections[name] == nil {
            out += "delete \(previous.collections[name]!.kind.rawValue) \(t) \(name)\n"
        }
        return out
    }
}
