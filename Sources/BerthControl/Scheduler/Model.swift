import BerthAPI
import BerthKube

/// The scheduler's views of Pods and Nodes, derived from the typed objects (BerthKube) once per object
/// version, so that filtering thousands of nodes per pod touches plain integers, symbols and small
/// arrays: quantities parsed, selectors compiled, requests summed.

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
    /// From a resource list ({"cpu": "500m", "memory": "1Gi", …}).
    init(_ list: [String: Quantity]) {
        milliCPU = list["cpu"]?.milliValue ?? 0
        memory = list["memory"]?.value ?? 0
        ephemeralStorage = list["ephemeral-storage"]?.value ?? 0
        pods = list["pods"]?.value ?? 0
    }
    init() {}
}

struct Taint: Sendable, Equatable {
    var key: String, value: String, effect: String
    init(_ taint: CoreV1.Taint) {
        key = taint.key
        value = taint.value ?? ""
        effect = taint.effect.rawValue
    }
    init(key: String, value: String = "", effect: String) { self.key = key; self.value = value; self.effect = effect }
    var text: String { "{\(key): \(value)}" }
}

struct Toleration: Sendable {
    var key: String, op: String, value: String, effect: String
    init(_ toleration: CoreV1.Toleration) {
        key = toleration.key ?? ""
        op = toleration.operator?.rawValue ?? "Equal"
        value = toleration.value ?? ""
        effect = toleration.effect?.rawValue ?? ""
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
    init(_ requirement: CoreV1.NodeSelectorRequirement) {
        key = requirement.key
        op = requirement.operator.rawValue
        values = requirement.values
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
    init(_ term: CoreV1.NodeSelectorTerm) {
        expressions = term.matchExpressions.map(NodeRequirement.init)
        fields = term.matchFields.map(NodeRequirement.init)
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
    var selector: BerthAPI.LabelSelector?
    var namespaces: Set<String>
    var allNamespaces: Bool
    var topologyKey: String
    var weight: Int64
    init(_ term: CoreV1.PodAffinityTerm, ownNamespace: String, weight: Int64 = 0) {
        selector = term.labelSelector.map { BerthAPI.LabelSelector(object: $0.kubeJSON()) }
        // An empty namespaceSelector ({}) means every namespace.
        allNamespaces = term.namespaceSelector.map { $0.matchLabels.isEmpty && $0.matchExpressions.isEmpty } ?? false
        namespaces = term.namespaces.isEmpty ? [ownNamespace] : Set(term.namespaces)
        topologyKey = term.topologyKey
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
    var selector: BerthAPI.LabelSelector?
    var minDomains: Int64
    init(_ constraint: CoreV1.TopologySpreadConstraint) {
        maxSkew = max(Int64(constraint.maxSkew), 1)
        topologyKey = constraint.topologyKey
        let action = constraint.whenUnsatisfiable.rawValue
        hard = action.isEmpty || action == "DoNotSchedule"
        selector = constraint.labelSelector.map { BerthAPI.LabelSelector(object: $0.kubeJSON()) }
        minDomains = Int64(constraint.minDomains ?? 1)
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
    /// spec.preemptionPolicy is Never: it waits for room instead of making it.
    var neverPreempts: Bool
    /// status.nominatedNodeName: the node it preempted pods on and waits for.
    var nominatedNode: String
    /// status.startTime in seconds since 1970 (nil: not started), what preemption compares victims by.
    var startTime: Int64?
    /// The claims its volumes use (VolumeBinding looks them up when it is scheduled).
    var claims: [String]
    var schedulerName: String
    var terminating: Bool
    var finished: Bool
    /// The pod as cached, whose resourceVersion is its store revision: binding is a compare-and-swap
    /// against it.
    var object: CoreV1.Pod

    var hasPodAffinity: Bool {
        !affinity.isEmpty || !antiAffinity.isEmpty || !preferredAffinity.isEmpty || !preferredAntiAffinity.isEmpty
    }

    init(_ pod: CoreV1.Pod) {
        let meta = pod.metadata
        let spec = pod.spec
        namespace = meta.namespace ?? "default"
        name = meta.name ?? ""
        key = namespace + "/" + name
        uid = meta.uid ?? ""
        labels = meta.labels
        nodeName = spec.nodeName ?? ""
        // Effective request: sum of containers, at least the largest init container, plus overhead.
        var sum = Resources()
        var nonZero = Resources()
        var ports: [String] = []
        for container in spec.containers {
            sum += Resources(container.resources.requests)
            nonZero += Self.nonZeroRequests(container.resources.requests)
            for port in container.ports {
                if let hostPort = port.hostPort, hostPort > 0 {
                    ports.append("\(port.protocol?.rawValue ?? "TCP")/\(port.hostIP ?? "0.0.0.0")/\(hostPort)")
                }
            }
        }
        for container in spec.initContainers {
            let r = Resources(container.resources.requests)
            sum.milliCPU = max(sum.milliCPU, r.milliCPU)
            sum.memory = max(sum.memory, r.memory)
            sum.ephemeralStorage = max(sum.ephemeralStorage, r.ephemeralStorage)
            let n = Self.nonZeroRequests(container.resources.requests)
            nonZero.milliCPU = max(nonZero.milliCPU, n.milliCPU)
            nonZero.memory = max(nonZero.memory, n.memory)
        }
        let overhead = Resources(spec.overhead)
        sum += overhead
        sum.pods = 1
        requests = sum
        nonZero.milliCPU += overhead.milliCPU
        nonZero.memory += overhead.memory
        self.nonZero = nonZero
        ownerUID = meta.ownerReferences.first?.uid ?? ""
        controller = pod.controllerRef.map { ref in
            let group = ref.apiVersion.contains("/") ? String(ref.apiVersion.split(separator: "/")[0]) : ""
            return (ref.kind, group, ref.name)
        }
        hostPorts = ports
        nodeSelector = spec.nodeSelector
        let nodeAffinity = spec.affinity?.nodeAffinity
        requiredTerms = nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution.map {
            $0.nodeSelectorTerms.map(NodeSelectorTerm.init)
        }
        preferredTerms = (nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map {
            (weight: Int64($0.weight), term: NodeSelectorTerm($0.preference))
        }
        tolerations = spec.tolerations.map(Toleration.init)
        let ns = namespace
        let podAffinity = spec.affinity?.podAffinity
        let podAntiAffinity = spec.affinity?.podAntiAffinity
        affinity = (podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map {
            PodAffinityTerm($0, ownNamespace: ns)
        }
        antiAffinity = (podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).map {
            PodAffinityTerm($0, ownNamespace: ns)
        }
        preferredAffinity = (podAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map {
            PodAffinityTerm($0.podAffinityTerm, ownNamespace: ns, weight: Int64($0.weight))
        }
        preferredAntiAffinity = (podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map {
            PodAffinityTerm($0.podAffinityTerm, ownNamespace: ns, weight: Int64($0.weight))
        }
        spread = spec.topologySpreadConstraints.map(SpreadConstraint.init)
        priority = Int64(spec.priority ?? 0)
        neverPreempts = spec.preemptionPolicy == .preemptNever
        nominatedNode = pod.status.nominatedNodeName ?? ""
        startTime = pod.status.startTime?.secondsSince1970
        claims = VolumeMatching.claimNames(of: pod)
        schedulerName = spec.schedulerName ?? "default-scheduler"
        terminating = pod.isTerminating
        finished = pod.isFinished
        object = pod
    }

    /// The store revision the pod was cached at.
    var revision: Int64 { Int64(object.metadata.resourceVersion ?? "") ?? 0 }
}

extension PodInfo {
    /// Upstream's defaults for a container without a CPU or memory request, when scoring
    /// (DefaultMilliCPURequest, DefaultMemoryRequest). A request given as 0 stays 0.
    static let defaultMilliCPU: Int64 = 100
    static let defaultMemory: Int64 = 200 * 1024 * 1024

    static func nonZeroRequests(_ requests: [String: Quantity]) -> Resources {
        var r = Resources()
        r.milliCPU = requests["cpu"].map { $0.milliValue ?? 0 } ?? defaultMilliCPU
        r.memory = requests["memory"].map { $0.value ?? 0 } ?? defaultMemory
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
    /// What preemption weighs a pod by, and names it with when it is chosen as a victim.
    var uid: String = ""
    var priority: Int64 = 0
    var startTime: Int64?
    /// Being deleted already: it still holds its share of the node until it is gone.
    var terminating = false
    /// The claims it uses (a ReadWriteOncePod claim is one pod's at a time).
    var claims: [String] = []
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
    /// The zone its pods are counted under in the scheduler's `ownerZoneCounts` (nil: not counted, the
    /// node does not exist).
    var countedZone: String?
    /// Index in the scheduler's `NodeTable` (-1: not in it).
    var slot = -1

    init(name: String) { self.name = name }

    func update(from node: CoreV1.Node, symbols: inout LabelSymbols) {
        labels = node.metadata.labels
        var values: [Int32] = []
        for (k, v) in labels {
            let ki = Int(symbols.key(k))
            let vi = symbols.value(v)
            if ki >= values.count { values.append(contentsOf: repeatElement(-1, count: ki + 1 - values.count)) }
            values[ki] = vi
        }
        labelValues = values
        allocatable = Resources(node.status.allocatable.isEmpty ? node.status.capacity : node.status.allocatable)
        taints = node.spec.taints.map(Taint.init)
        unschedulable = node.spec.unschedulable ?? false
        let readyCond = node.status.conditions.first { $0.type == .ready }
        ready = readyCond?.status == .true
        // A node not (yet) tainted by the node lifecycle controller is still not a place for new pods.
        if !ready
            && !taints.contains(where: {
                $0.key == "node.kubernetes.io/not-ready" || $0.key == "node.kubernetes.io/unreachable"
            })
        {
            taints.append(
                Taint(
                    key: readyCond?.status == .false
                        ? "node.kubernetes.io/not-ready" : "node.kubernetes.io/unreachable",
                    effect: "NoSchedule"))
        }
        plain = !unschedulable && !taints.contains { $0.effect == "NoSchedule" || $0.effect == "NoExecute" }
        exists = true
    }
    /// A copy to try things on (preemption removes pods from it to see whether a pod would fit).
    func copy() -> NodeInfo {
        let n = NodeInfo(name: name)
        n.labels = labels
        n.labelValues = labelValues
        n.allocatable = allocatable
        n.requested = requested
        n.nonZeroRequested = nonZeroRequested
        n.taints = taints
        n.unschedulable = unschedulable
        n.ready = ready
        n.plain = plain
        n.pods = pods
        n.usedPorts = usedPorts
        n.exists = exists
        return n
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
