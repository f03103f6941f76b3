import Foundation

/// The FlowSchemas and priority levels in force, read once per change: how a request is classified
/// (upstream's APF matching: the matching schema of lowest precedence, ties by name; a schema whose
/// priority level does not exist — dangling — matches nothing).
struct FlowControlConfiguration: Sendable {
    struct Level: Sendable {
        var name: String
        var uid: String
        var exempt: Bool
        var shares: Int
        /// limitResponse Reject: no queues, a request beyond the limit is refused at once.
        var reject: Bool
        var queues: Int
        var handSize: Int
        var queueLengthLimit: Int
        /// Of its nominal seats, the percentage other levels may borrow while idle.
        var lendablePercent: Int
        /// How many seats beyond its nominal ones it may borrow, as a percentage of them (nil: no bound).
        var borrowingLimitPercent: Int?

        init(_ j: JSON) {
            name = j["metadata"]["name"].string ?? ""
            uid = j["metadata"]["uid"].string ?? ""
            let spec = j["spec"]
            exempt = spec["type"].string == "Exempt"
            let limited = spec["limited"]
            shares = Int(
                exempt
                    ? spec["exempt"]["nominalConcurrencyShares"].int ?? 0
                    : limited["nominalConcurrencyShares"].int ?? 30)
            reject = limited["limitResponse"]["type"].string != "Queue"
            lendablePercent = Int((exempt ? spec["exempt"]["lendablePercent"] : limited["lendablePercent"]).int ?? 0)
            borrowingLimitPercent = exempt ? 0 : limited["borrowingLimitPercent"].int.map { Int($0) }
            let q = limited["limitResponse"]["queuing"]
            queues = max(1, Int(q["queues"].int ?? 64))
            handSize = max(1, min(Int(q["handSize"].int ?? 8), queues))
            queueLengthLimit = max(1, Int(q["queueLengthLimit"].int ?? 50))
        }
    }

    struct Schema: Sendable {
        var name: String
        var uid: String
        var level: String
        var precedence: Int
        var distinguisher: String?
        var rules: [JSON]

        init(_ j: JSON) {
            name = j["metadata"]["name"].string ?? ""
            uid = j["metadata"]["uid"].string ?? ""
            level = j["spec"]["priorityLevelConfiguration"]["name"].string ?? ""
            precedence = Int(j["spec"]["matchingPrecedence"].int ?? 1000)
            distinguisher = j["spec"]["distinguisherMethod"]["type"].string
            rules = j["spec"]["rules"].array ?? []
        }

        func matches(_ a: AuthorizationAttributes) -> Bool {
            rules.contains { rule in
                guard (rule["subjects"].array ?? []).contains(where: { Self.subject($0, a.user) }) else { return false }
                if a.isResourceRequest {
                    return (rule["resourceRules"].array ?? []).contains { Self.resourceRule($0, a) }
                }
                return (rule["nonResourceRules"].array ?? []).contains { Self.nonResourceRule($0, a) }
            }
        }

        static func subject(_ s: JSON, _ user: UserInfo) -> Bool {
            switch s["kind"].string {
            case "User":
                let name = s["user"]["name"].string ?? ""
                return name == "*" || name == user.name
            case "Group":
                let name = s["group"]["name"].string ?? ""
                return name == "*" || user.groups.contains(name)
            case "ServiceAccount":
                let namespace = s["serviceAccount"]["namespace"].string ?? ""
                let name = s["serviceAccount"]["name"].string ?? ""
                let prefix = "system:serviceaccount:\(namespace):"
                guard user.name.hasPrefix(prefix) else { return false }
                return name == "*" || user.name == prefix + name
            default: return false
            }
        }

        static func has(_ list: JSON, _ value: String) -> Bool {
            let items = (list.array ?? []).compactMap(\.string)
            return items.contains("*") || items.contains(value)
        }

        static func resourceRule(_ r: JSON, _ a: AuthorizationAttributes) -> Bool {
            guard has(r["verbs"], a.verb), has(r["apiGroups"], a.apiGroup) else { return false }
            let resource = a.subresource.isEmpty ? a.resource : a.resource + "/" + a.subresource
            guard has(r["resources"], resource) else { return false }
            if a.namespace.isEmpty { return r["clusterScope"].bool == true }
            return has(r["namespaces"], a.namespace)
        }

        static func nonResourceRule(_ r: JSON, _ a: AuthorizationAttributes) -> Bool {
            guard has(r["verbs"], a.verb) else { return false }
            return (r["nonResourceURLs"].array ?? []).compactMap(\.string).contains { url in
                url == "*" || url == a.path || (url.hasSuffix("/*") && a.path.hasPrefix(String(url.dropLast())))
            }
        }
    }

    var schemas: [Schema] = []
    var levels: [String: Level] = [:]

    init(schemas: [JSON], levels: [JSON]) {
        for l in levels.map(Level.init) { self.levels[l.name] = l }
        self.schemas = schemas.map(Schema.init).filter { self.levels[$0.level] != nil }
            .sorted { ($0.precedence, $0.name) < ($1.precedence, $1.name) }
    }

    /// The schema and level of a request; nil when nothing matches (no catch-all schema: not limited).
    func classify(_ a: AuthorizationAttributes) -> (schema: Schema, level: Level)? {
        guard let schema = schemas.first(where: { $0.matches(a) }), let level = levels[schema.level] else {
            return nil
        }
        return (schema, level)
    }

    /// What tells flows of a schema apart: the user, the namespace, or nothing.
    static func flowKey(_ schema: Schema, _ a: AuthorizationAttributes) -> String {
        switch schema.distinguisher {
        case "ByUser": return schema.name + "\u{0}" + a.user.name
        case "ByNamespace": return schema.name + "\u{0}" + a.namespace
        default: return schema.name
        }
    }
}
