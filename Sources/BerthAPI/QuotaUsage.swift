import BerthKube
import Foundation

/// Amounts of resources by quota name (`pods`, `requests.cpu`, `count/deployments.apps`) in milli-units,
/// remembering which were written with binary suffixes so sums print as Go's Quantity prints them
/// (`512Mi`, not `536870912`): upstream's corev1.ResourceList with the quota package's arithmetic.
public struct ResourceAmounts: Equatable, Sendable {
    public var milli: [String: Int64] = [:]
    public var binary: Set<String> = []

    public init() {}

    /// From a `hard`/`used` map; entries that are not quantities are left out (validation refuses them).
    public init(_ json: JSON) {
        for (name, value) in json.object ?? [:] {
            guard let text = value.string, let amount = Quantity.milli(text) else { continue }
            milli[name] = amount
            if text.hasSuffix("i") { binary.insert(name) }
        }
    }

    public var names: Set<String> { Set(milli.keys) }
    public var isEmpty: Bool { milli.isEmpty }

    mutating func add(_ name: String, milli amount: Int64, binary isBinary: Bool = false) {
        milli[name, default: 0] += amount
        if isBinary { binary.insert(name) }
    }

    public mutating func add(_ other: ResourceAmounts) {
        for (name, amount) in other.milli { add(name, milli: amount, binary: other.binary.contains(name)) }
    }

    /// Only the names in `names` (quota.Mask).
    public func masked(_ names: Set<String>) -> ResourceAmounts {
        var result = ResourceAmounts()
        for (name, amount) in milli where names.contains(name) {
            result.add(name, milli: amount, binary: binary.contains(name))
        }
        return result
    }

    /// Without the zero amounts (quota.RemoveZeros).
    var withoutZeros: ResourceAmounts { masked(Set(milli.filter { $0.value != 0 }.keys)) }

    public func text(_ name: String) -> String {
        LimitRangerAdmission.text(milli: milli[name] ?? 0, binary: binary.contains(name))
    }

    public var json: JSON { .object(Dictionary(uniqueKeysWithValues: milli.keys.map { ($0, .string(text($0))) })) }

    /// `a=1,b=2m`, names sorted (the admission's prettyPrint).
    var described: String { milli.keys.sorted().map { "\($0)=\(text($0))" }.joined(separator: ",") }
}

/// What an object costs against a ResourceQuota, which quotas apply to it, and what they demand of it:
/// upstream's quota evaluators (pkg/quota/v1/evaluator/core, the generic object-count one), shared by the
/// ResourceQuota admission in the API server and the quota controller that recounts usage.
public enum QuotaUsage {
    /// The compute resources a quota on which makes every container state them (upstream's
    /// "backward compatibility requirement" of the pod evaluator).
    static let containerMustState: Set<String> = [
        "cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
    ]

    /// Scopes a quota may name, and which of them pods alone have.
    public static let scopes: Set<String> = [
        "Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity",
    ]

    /// The object-count name of a resource: `count/pods`, `count/deployments.apps`.
    public static func countName(_ r: ResourceType) -> String {
        r.group.isEmpty ? "count/\(r.plural)" : "count/\(r.plural).\(r.group)"
    }

    /// The short names some kinds are counted by besides `count/…`.
    static let legacyCountNames: [String: String] = [
        "pods": "pods", "services": "services", "configmaps": "configmaps", "secrets": "secrets",
        "persistentvolumeclaims": "persistentvolumeclaims", "replicationcontrollers": "replicationcontrollers",
        "resourcequotas": "resourcequotas",
    ]

    /// The usage of one object of `r` (upstream's Usage of its evaluator).
    public static func usage(of obj: JSON, _ r: ResourceType, now: Date = Date()) -> ResourceAmounts {
        var result = ResourceAmounts()
        result.add(countName(r), milli: 1000)
        guard r.group.isEmpty else { return result }
        switch r.plural {
        case "pods":
            // A pod that has finished, or whose grace period is over, uses nothing but its count.
            guard countsAgainstQuota(pod: obj, now: now) else { return result }
            result.add("pods", milli: 1000)
            let (requests, limits) = LimitRangerAdmission.podTotals(obj)
            for (name, value) in requests {
                guard let text = value.string, let amount = Quantity.milli(text) else { continue }
                let isBinary = text.hasSuffix("i")
                result.add("requests.\(name)", milli: amount, binary: isBinary)
                // Bare cpu, memory and ephemeral-storage are requests too; so are hugepages-*.
                if ["cpu", "memory", "ephemeral-storage"].contains(name) || name.hasPrefix("hugepages-") {
                    result.add(name, milli: amount, binary: isBinary)
                }
            }
            for (name, value) in limits where ["cpu", "memory", "ephemeral-storage"].contains(name) {
                guard let text = value.string, let amount = Quantity.milli(text) else { continue }
                result.add("limits.\(name)", milli: amount, binary: text.hasSuffix("i"))
            }
        case "services":
            result.add("services", milli: 1000)
            let type = obj["spec"]["type"].string ?? "ClusterIP"
            if type == "LoadBalancer" { result.add("services.loadbalancers", milli: 1000) }
            let allocates =
                type == "NodePort"
                || (type == "LoadBalancer"
                    && obj["spec"]["allocateLoadBalancerNodePorts"].bool != false)
            if allocates {
                let ports = Set((obj["spec"]["ports"].array ?? []).map { $0["port"].int ?? 0 })
                result.add("services.nodeports", milli: Int64(ports.count) * 1000)
            }
        case "persistentvolumeclaims":
            result.add("persistentvolumeclaims", milli: 1000)
            if let text = obj["spec"]["resources"]["requests"]["storage"].string, let amount = Quantity.milli(text) {
                result.add("requests.storage", milli: amount, binary: text.hasSuffix("i"))
                if let storageClass = obj["spec"]["storageClassName"].string, !storageClass.isEmpty {
                    let prefix = "\(storageClass).storageclass.storage.k8s.io/"
                    result.add(prefix + "requests.storage", milli: amount, binary: text.hasSuffix("i"))
                    result.add(prefix + "persistentvolumeclaims", milli: 1000)
                }
            }
        default:
            if let name = legacyCountNames[r.plural] { result.add(name, milli: 1000) }
        }
        return result
    }

    /// Of a quota's `names`, the ones objects of `r` can use (upstream's MatchingResources).
    public static func tracked(_ names: Set<String>, by r: ResourceType) -> Set<String> {
        names.filter { name in
            if name == countName(r) { return true }
            guard r.group.isEmpty else { return false }
            switch r.plural {
            case "pods":
                return name == "pods" || ["cpu", "memory", "ephemeral-storage"].contains(name)
                    || name.hasPrefix("requests.") || name.hasPrefix("limits.") || name.hasPrefix("hugepages-")
            case "services": return ["services", "services.loadbalancers", "services.nodeports"].contains(name)
            case "persistentvolumeclaims":
                return name == "persistentvolumeclaims" || name == "requests.storage"
                    || name.hasSuffix(".storageclass.storage.k8s.io/requests.storage")
                    || name.hasSuffix(".storageclass.storage.k8s.io/persistentvolumeclaims")
            default: return legacyCountNames[r.plural] == name
            }
        }
    }

    /// Whether a pod is charged for more than its count (upstream's QuotaV1Pod): not once it has
    /// finished, nor once it is past its deletion's grace period.
    static func countsAgainstQuota(pod: JSON, now: Date) -> Bool {
        let phase = pod["status"]["phase"].string
        if phase == "Succeeded" || phase == "Failed" { return false }
        if let deletion = pod["metadata"]["deletionTimestamp"].string,
            let deadline = APITime.parse(deletion)?.addingTimeInterval(
                Double(pod["metadata"]["deletionGracePeriodSeconds"].int ?? 0)),
            now > deadline
        {
            return false
        }
        return true
    }

    /// Whether the quota's scopes and scope selector select the object: scoped quotas are for pods
    /// only (upstream's object-count evaluator matches no scope).
    public static func quota(_ quota: JSON, selects obj: JSON, _ r: ResourceType) -> Bool {
        var requirements: [(scope: String, op: String, values: [String])] = (quota["spec"]["scopes"].array ?? [])
            .compactMap { $0.string }.map { ($0, "Exists", []) }
        for expression in quota["spec"]["scopeSelector"]["matchExpressions"].array ?? [] {
            requirements.append(
                (
                    expression["scopeName"].string ?? "", expression["operator"].string ?? "",
                    (expression["values"].array ?? []).compactMap(\.string)
                ))
        }
        guard !requirements.isEmpty else { return true }
        guard r.group.isEmpty, r.plural == "pods" else { return false }
        return requirements.allSatisfy { requirement in
            scope(requirement.scope, op: requirement.op, values: requirement.values, pod: obj)
        }
    }

    static func scope(_ scope: String, op: String, values: [String], pod: JSON) -> Bool {
        let spec = pod["spec"]
        switch scope {
        case "Terminating": return spec["activeDeadlineSeconds"].int.map { $0 >= 0 } ?? false
        case "NotTerminating": return !(spec["activeDeadlineSeconds"].int.map { $0 >= 0 } ?? false)
        case "BestEffort": return isBestEffort(pod)
        case "NotBestEffort": return !isBestEffort(pod)
        case "CrossNamespacePodAffinity":
            let affinity = spec["affinity"]
            return ["podAffinity", "podAntiAffinity"].contains { kind in
                let terms =
                    (affinity[kind]["requiredDuringSchedulingIgnoredDuringExecution"].array ?? [])
                    + (affinity[kind]["preferredDuringSchedulingIgnoredDuringExecution"].array ?? []).map {
                        $0["podAffinityTerm"]
                    }
                return terms.contains { !($0["namespaces"].array ?? []).isEmpty || !$0["namespaceSelector"].isNull }
            }
        case "PriorityClass":
            let priorityClass = spec["priorityClassName"].string ?? ""
            switch op {
            case "In": return values.contains(priorityClass)
            case "NotIn": return !values.contains(priorityClass)
            case "Exists": return !priorityClass.isEmpty
            case "DoesNotExist": return priorityClass.isEmpty
            default: return false
            }
        default: return false
        }
    }

    /// BestEffort QoS: no container states a cpu or memory request or limit.
    static func isBestEffort(_ pod: JSON) -> Bool {
        let containers = (pod["spec"]["containers"].array ?? []) + (pod["spec"]["initContainers"].array ?? [])
        return containers.allSatisfy { container in
            ["requests", "limits"].allSatisfy { field in
                let amounts = container["resources"][field].object ?? [:]
                return amounts["cpu"] == nil && amounts["memory"] == nil
            }
        }
    }

    /// What a quota tracking `tracked` demands of a pod: every container (and init container) states the
    /// cpu and memory requests and limits the quota limits. The message upstream's pod evaluator gives,
    /// nil when none is missing.
    static func missingConstraints(_ tracked: Set<String>, pod: JSON) -> String? {
        let required = tracked.intersection(containerMustState)
        guard !required.isEmpty else { return nil }
        var missing: [String: [String]] = [:]
        let containers = (pod["spec"]["containers"].array ?? []) + (pod["spec"]["initContainers"].array ?? [])
        for container in containers {
            let requests = container["resources"]["requests"].object ?? [:]
            let limits = container["resources"]["limits"].object ?? [:]
            var stated: Set<String> = []
            for name in ["cpu", "memory"] where requests[name] != nil { stated.formUnion([name, "requests.\(name)"]) }
            for name in ["cpu", "memory"] where limits[name] != nil { stated.insert("limits.\(name)") }
            for name in required.subtracting(stated) {
                missing[name, default: []].append(container["name"].string ?? "")
            }
        }
        guard !missing.isEmpty else { return nil }
        return "must specify "
            + missing.keys.sorted().map { "\($0) for: \(Set(missing[$0] ?? []).sorted().joined(separator: ","))" }
            .joined(separator: "; ")
    }
}
