import BerthAPI

/// Typed views of what the scheduler reads from Pods and Nodes, decoded once per object version so that
/// filtering thousands of nodes per pod touches plain integers and small arrays, not JSON trees.

/// Requested or allocatable amounts.
struct Resources: Sendable, Equatable {
    var milliCPU: Int64 = 0
    var memory: Int64 = 0
    var ephemeralStorage: Int64 = 0
    var pods: Int64 = 0

    static func += (a: inout Resources, b: Resources) {
        a.milliCPU += b.milliCPU; a.memory += b.memory; a.ephemeralStorage += b.ephemeralStorage; a.pods += b.pods
    }
    static func -= (a: inout Resources, b: Resources) {
        a.milliCPU -= b.milliCPU; a.memory -= b.memory; a.ephemeralStorage -= b.ephemeralStorage; a.pods -= b.pods
    }
    /// From a resource map ({"cpu": "500m", "memory": "1Gi", …}).
    init(_ j: JSON) {
        milliCPU = Quantity.milli(j["cpu"]) ?? 0
        memory = Quantity.units(j["memory"]) ?? 0
        ephemeralStorage = Quantity.units(j["ephemeral-storage"]) ?? 0
        pods = Quantity.units(j["pods"]) ?? 0
    }
    init() {}
}

struct Taint: Sendable, Equatable {
    var key: String, value: String, effect: String
    init(_ j: JSON) { key = j["key"].string ?? ""; value = j["value"].string ?? ""; effect = j["effect"].string ?? "" }
    init(key: String, value: String = "", effect: String) { self.key = key; self.value = value; self.effect = effect }
    var text: String { "{\(key): \(value)}" }
}

struct Toleration: Sendable {
    var key: String, op: String, value: String, effect: String
    init(_ j: JSON) {
        key = j["key"].string ?? ""; op = j["operator"].string ?? "Equal"; value = j["value"].string ?? "";
        effect = j["effect"].string ?? ""
    }
    /// Upstream's ToleratesTaint: empty effect matches every effect; empty key with Exists matches all keys.
    func tolerates(_ t: Taint) -> Bool {
        if !effect.isEmpty && effect != t.effect { return false }
        if !key.isEmpty && key != t.key { return false }
        switch op {
        case "Exists": return true
        case "Equal", "": return value == t.value
        default: return false
        }
    }
}

/// A node selector requirement (In, NotIn, Exists, DoesNotExist, Gt, Lt) on a label or on metadata.name.
struct NodeRequirement: Sendable {
    var key: String, op: String, values: [String]
    init(_ j: JSON) {
        key = j["key"].string ?? ""; op = j["operator"].string ?? "";
        values = (j["values"].array ?? []).compactMap(\.string)
    }
    func matches(_ value: String?) -> Bool {
        switch op {
        case "In": return value.map(values.contains) ?? false
        case "NotIn": return value.map { !values.contains($0) } ?? true
        case "Exists": return value != nil
        case "DoesNotExist": return value == nil
        case "Gt":
            return value.flatMap { Int64($0) }.flatMap { v in values.first.flatMap { Int64($0) }.map { v > $0 } }
                ?? false
        case "Lt":
            return value.flatMap { Int64($0) }.flatMap { v in values.first.flatMap { Int64($0) }.map { v < $0 } }
                ?? false
        default: return false
        }
    }
}

/// One NodeSelectorTerm: all expressions and fields must match (an empty term matches nothing).
struct NodeSelectorTerm: Sendable {
    var expressions: [NodeRequirement]
    var fields: [NodeRequirement]
    init(_ j: JSON) {
        expressions = (j["matchExpressions"].array ?? []).map(NodeRequirement.init)
        fields = (j["matchFields"].array ?? []).map(NodeRequirement.init)
    }
    func matches(_ node: NodeInfo) -> Bool {
        if expressions.isEmpty && fields.isEmpty { return false }
        for e in expressions where !e.matches(node.labels[e.key]) { return false }
        for f in fields where !f.matches(f.key == "metadata.name" ? node.name : nil) { return false }
        return true
    }
}

/// A pod (anti-)affinity term: pods matching `selector` in `namespaces` (empty = the pod's own) define
/// the topology domains (values of `topologyKey` on their nodes).
struct PodAffinityTerm: Sendable {
    var selector: LabelSelector?
    var namespaces: Set<String>
    var allNamespaces: Bool
    var topologyKey: String
    var weight: Int64
    init(_ j: JSON, ownNamespace: String, weight: Int64 = 0) {
        selector = j["labelSelector"].isNull ? nil : LabelSelector(object: j["labelSelector"])
        let ns = (j["namespaces"].array ?? []).compactMap(\.string)
        // An empty namespaceSelector ({}) means every namespace.
        allNamespaces = j["namespaceSelector"].object.map { $0.isEmpty } ?? false
        namespaces = ns.isEmpty ? [ownNamespace] : Set(ns)
        topologyKey = j["topologyKey"].string ?? ""
        self.weight = weight
    }
    func matches(namespace: String, labels: [String: String]) -> Bool {
        guard let selector else { return false }
        return (allNamespaces || namespaces.contains(namespace)) && selector.matches(labels)
    }
}

struct SpreadConstraint: Sendable {
    var maxSkew: Int64
    var topologyKey: String
    var hard: Bool
    var selector: LabelSelector?
    var minDomains: Int64
    init(_ j: JSON) {
        maxSkew = max(j["maxSkew"].int ?? 1, 1)
        topologyKey = j["topologyKey"].string ?? ""
        hard = (j["whenUnsatisfiable"].string ?? "DoNotSchedule") == "DoNotSchedule"
        selector = j["labelSelector"].isNull ? nil : LabelSelector(object: j["labelSelector"])
        minDomains = j["minDomains"].int ?? 1
    }
    func counts(_ namespace: String, _ labels: [String: String], podNamespace: String) -> Bool {
        namespace == podNamespace && (selector?.matches(labels) ?? false)
    }
}

/// What the scheduler needs to know about a pod.
struct PodInfo: Sendable {
    var key: String
    var namespace: String
    var name: String
    var uid: String
    var labels: [String: String]
    var requests: Resources
    /// Requests with upstream's defaults for containers that name none (100m CPU, 200 MiB memory):
    /// what the resource scores count, so pods without requests still spread (kube-scheduler's
    /// NonMissingContainerRequests).
    var nonZero: Resources
    /// UID of the first owner reference ("" when none): pods of one owner are counted per node for the
    /// system-default spreading, as kube-scheduler counts them.
    var ownerUID: String
    /// The controller owner reference (kind, API group, name), whose selector the default spreading uses.
    var controller: (kind: String, group: String, name: String)?
    var nodeName: String
    var nodeSelector: [String: String]
    var requiredTerms: [NodeSelectorTerm]?
    var preferredTerms: [(weight: Int64, term: NodeSelectorTerm)]
    var tolerations: [Toleration]
    var affinity: [PodAffinityTerm]
    var antiAffinity: [PodAffinityTerm]
    var preferredAffinity: [PodAffinityTerm]
    var preferredAntiAffinity: [PodAffinityTerm]
    var spread: [SpreadConstraint]
    var hostPorts: [String]
    var priority: Int64
    var schedulerName: String
    var terminating: Bool
    var finished: Bool
    /// The pod as stored, and its store revision: binding is a compare-and-swap against it.
    var object: JSON
    var revision: Int64

    var hasPodAffinity: Bool {
        !affinity.isEmpty || !antiAffinity.isEmpty || !preferredAffinity.isEmpty || !preferredAntiAffinity.isEmpty
    }

    init(_ pod: JSON) {
        let meta = pod["metadata"], spec = pod["spec"]
        namespace = meta["namespace"].string ?? "default"
        name = meta["name"].string ?? ""
        key = namespace + "/" + name
        uid = meta["uid"].string ?? ""
        labels = meta["labels"].stringMap
        nodeName = spec["nodeName"].string ?? ""
        // Effective request: sum of containers, at least the largest init container, plus overhead.
        var sum = Resources()
        var nonZero = Resources()
        var ports: [String] = []
        for c in spec["containers"].array ?? [] {
            sum += Resources(c["resources"]["requests"])
            nonZero += Self.nonZeroRequests(c["resources"]["requests"])
            for p in c["ports"].array ?? [] {
                if let hp = p["hostPort"].int, hp > 0 {
                    ports.append("\(p["protocol"].string ?? "TCP")/\(p["hostIP"].string ?? "0.0.0.0")/\(hp)")
                }
            }
        }
        for c in spec["initContainers"].array ?? [] {
            let r = Resources(c["resources"]["requests"])
            sum.milliCPU = max(sum.milliCPU, r.milliCPU); sum.memory = max(sum.memory, r.memory)
            sum.ephemeralStorage = max(sum.ephemeralStorage, r.ephemeralStorage)
            let n = Self.nonZeroRequests(c["resources"]["requests"])
            nonZero.milliCPU = max(nonZero.milliCPU, n.milliCPU); nonZero.memory = max(nonZero.memory, n.memory)
        }
        let overhead = Resources(spec["overhead"])
        sum += overhead
        sum.pods = 1
        requests = sum
        nonZero.milliCPU += overhead.milliCPU; nonZero.memory += overhead.memory
        self.nonZero = nonZero
        let owners = meta["ownerReferences"].array ?? []
        ownerUID = owners.first?["uid"].string ?? ""
        controller = owners.first { $0["controller"].bool == true }.map { ref in
            let apiVersion = ref["apiVersion"].string ?? ""
            let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
            return (ref["kind"].string ?? "", group, ref["name"].string ?? "")
        }
        hostPorts = ports
        nodeSelector = spec["nodeSelector"].stringMap
        let na = spec["affinity"]["nodeAffinity"]
        let req = na["requiredDuringSchedulingIgnoredDuringExecution"]
        requiredTerms = req.isNull ? nil : (req["nodeSelectorTerms"].array ?? []).map(NodeSelectorTerm.init)
        preferredTerms = (na["preferredDuringSchedulingIgnoredDuringExecution"].array ?? []).map {
            (weight: $0["weight"].int ?? 1, term: NodeSelectorTerm($0["preference"]))
        }
        tolerations = (spec["tolerations"].array ?? []).map(Toleration.init)
        let ns = namespace
        let pa = spec["affinity"]["podAffinity"], paa = spec["affinity"]["podAntiAffinity"]
        affinity = (pa["requiredDuringSchedulingIgnoredDuringExecution"].array ?? []).map {
            PodAffinityTerm($0, ownNamespace: ns)
        }
        antiAffinity = (paa["requiredDuringSchedulingIgnoredDuringExecution"].array ?? []).map {
            PodAffinityTerm($0, ownNamespace: ns)
        }
        preferredAffinity = (pa["preferredDuringSchedulingIgnoredDuringExecution"].array ?? []).map {
            PodAffinityTerm($0["podAffinityTerm"], ownNamespace: ns, weight: $0["weight"].int ?? 1)
        }
        preferredAntiAffinity = (paa["preferredDuringSchedulingIgnoredDuringExecution"].array ?? []).map {
            PodAffinityTerm($0["podAffinityTerm"], ownNamespace: ns, weight: $0["weight"].int ?? 1)
        }
        spread = (spec["topologySpreadConstraints"].array ?? []).map(SpreadConstraint.init)
        priority = spec["priority"].int ?? 0
        schedulerName = spec["schedulerName"].string ?? "default-scheduler"
        terminating = !meta["deletionTimestamp"].isNull
        let phase = pod["status"]["phase"].string ?? ""
        finished = phase == "Succeeded" || phase == "Failed"
        object = pod
        revision = Int64(meta["resourceVersion"].string ?? "") ?? 0
    }
}

extension PodInfo {
    /// Upstream's defaults for a container without a CPU or memory request, when scoring
    /// (DefaultMilliCPURequest, DefaultMemoryRequest). A request given as 0 stays 0.
    static let defaultMilliCPU: Int64 = 100
    static let defaultMemory: Int64 = 200 * 1024 * 1024

    static func nonZeroRequests(_ requests: JSON) -> Resources {
        var r = Resources()
        r.milliCPU = requests["cpu"].isNull ? defaultMilliCPU : (Quantity.milli(requests["cpu"]) ?? 0)
        r.memory = requests["memory"].isNull ? defaultMemory : (Quantity.units(requests["memory"]) ?? 0)
        return r
    }
}

/// A pod as placed on a node (what other pods' affinity and spreading look at).
struct PlacedPod: Sendable {
    var namespace: String
    var labels: [String: String]
    var requests: Resources
    var nonZero: Resources
    var ownerUID: String
    var hostPorts: [String]
    var antiAffinity: [PodAffinityTerm]
}

/// Label keys and values numbered, so the per-node filter compares integers instead of hashing and
/// comparing strings like "topology.kubernetes.io/zone" thousands of times per pod.
/// Keys and values are numbered apart: keys are few (they index a node's row), values many.
struct LabelSymbols {
    private var keys: [String: Int32] = [:]
    private var values: [String: Int32] = [:]
    var keyCount: Int { keys.count }
    mutating func key(_ s: String) -> Int32 { Self.id(s, in: &keys) }
    mutating func value(_ s: String) -> Int32 { Self.id(s, in: &values) }
    func existingKey(_ s: String) -> Int32? { keys[s] }
    func existingValue(_ s: String) -> Int32? { values[s] }
    private static func id(_ s: String, in table: inout [String: Int32]) -> Int32 {
        if let i = table[s] { return i }
        let i = Int32(table.count)
        table[s] = i
        return i
    }
}

/// A pod's nodeSelector as label symbols (nil: some key or value is on no node, so no node matches).
struct CompiledSelector {
    var pairs: [(key: Int32, value: Int32)]
    init?(_ selector: [String: String], _ symbols: LabelSymbols) {
        pairs = []
        pairs.reserveCapacity(selector.count)
        for (k, v) in selector {
            guard let ki = symbols.existingKey(k), let vi = symbols.existingValue(v) else { return nil }
            pairs.append((ki, vi))
        }
    }
    func matches(_ node: NodeInfo) -> Bool {
        node.labelValues.withUnsafeBufferPointer { values in
            for p in pairs where Int(p.key) >= values.count || values[Int(p.key)] != p.value { return false }
            return true
        }
    }
}

/// The scheduler's view of one node: allocatable, what is already requested on it, labels and taints.
final class NodeInfo: @unchecked Sendable {
    let name: String
    var labels: [String: String] = [:]
    /// `labels` by symbol: value symbol at each key symbol's index, -1 where the node lacks the key.
    var labelValues: [Int32] = []
    var allocatable = Resources()
    var requested = Resources()
    /// Sum of the placed pods' `nonZero` requests (the resource scores' view of the node).
    var nonZeroRequested = Resources()
    var taints: [Taint] = []
    var unschedulable = false
    var ready = true
    /// Schedulable and without NoSchedule/NoExecute taints: most nodes, which the filter then passes
    /// without looking at tolerations.
    var plain = true
    var pods: [String: PlacedPod] = [:]
    var usedPorts: [String: Int] = [:]
    var exists = false
    /// Index in the scheduler's `NodeTable` (-1: not in it).
    var slot = -1

    init(name: String) { self.name = name }

    func update(from node: JSON, symbols: inout LabelSymbols) {
        labels = node["metadata"]["labels"].stringMap
        var values: [Int32] = []
        for (k, v) in labels {
            let ki = Int(symbols.key(k)), vi = symbols.value(v)
            if ki >= values.count { values.append(contentsOf: repeatElement(-1, count: ki + 1 - values.count)) }
            values[ki] = vi
        }
        labelValues = values
        var a = Resources(node["status"]["allocatable"])
        if node["status"]["allocatable"].isNull { a = Resources(node["status"]["capacity"]) }
        allocatable = a
        taints = (node["spec"]["taints"].array ?? []).map(Taint.init)
        unschedulable = node["spec"]["unschedulable"].bool ?? false
        let readyCond = (node["status"]["conditions"].array ?? []).first { $0["type"].string == "Ready" }
        ready = readyCond?["status"].string == "True"
        // A node not (yet) tainted by the node lifecycle controller is still not a place for new pods.
        if !ready
            && !taints.contains(where: {
                $0.key == "node.kubernetes.io/not-ready" || $0.key == "node.kubernetes.io/unreachable"
            })
        {
            taints.append(
                Taint(
                    key: readyCond?["status"].string == "False"
                        ? "node.kubernetes.io/not-ready" : "node.kubernetes.io/unreachable",
                    effect: "NoSchedule"))
        }
        plain = !unschedulable && !taints.contains { $0.effect == "NoSchedule" || $0.effect == "NoExecute" }
        exists = true
    }
    func add(_ key: String, _ p: PlacedPod) {
        if let old = pods[key] { remove(key, old) }
        pods[key] = p
        requested += p.requests
        nonZeroRequested += p.nonZero
        for hp in p.hostPorts { usedPorts[hp, default: 0] += 1 }
    }
    func remove(_ key: String) {
        if let old = pods[key] { remove(key, old) }
    }
    private func remove(_ key: String, _ old: PlacedPod) {
        pods[key] = nil
        requested -= old.requests
        nonZeroRequested -= old.nonZero
        for hp in old.hostPorts {
            usedPorts[hp, default: 1] -= 1
            if usedPorts[hp] == 0 { usedPorts[hp] = nil }
        }
    }
}
