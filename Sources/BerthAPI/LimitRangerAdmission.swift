import BerthKube
import Foundation

/// Upstream's LimitRanger admission plugin on pod create: each LimitRange of the pod's namespace gives
/// its Container defaults to containers that state none for a resource (noted in the pod's
/// `kubernetes.io/limit-ranger` annotation), then its bounds are checked for each container and for the
/// pod as a whole; a pod outside them is refused with every reason.
enum LimitRangerAdmission {
    static let annotation = "kubernetes.io/limit-ranger"

    static func admit(_ pod: inout JSON, handler: Handler) async throws {
        let namespace = pod["metadata"]["namespace"].string ?? ""
        let ranges = try await handler.storedObjects(Registry.limitRanges, namespace: namespace).map(\.object)
        guard !ranges.isEmpty else { return }
        var notes: [String] = []
        for range in ranges { applyDefaults(range, to: &pod, notes: &notes) }
        if !notes.isEmpty {
            pod["metadata"]["annotations"][annotation] = .string(
                "LimitRanger plugin set: " + notes.joined(separator: "; "))
        }
        var reasons: [String] = []
        for range in ranges { reasons += violations(range, pod: pod) }
        guard reasons.isEmpty else {
            let name = pod["metadata"]["name"].string ?? ""
            let joined = reasons.count == 1 ? reasons[0] : "[" + reasons.joined(separator: ", ") + "]"
            throw APIError.forbidden("pods \"\(name)\" is forbidden: \(joined)")
        }
    }

    /// Upstream's mergeContainerResources for each container and init container.
    static func applyDefaults(_ range: JSON, to pod: inout JSON, notes: inout [String]) {
        var limits: [String: JSON] = [:], requests: [String: JSON] = [:]
        for item in range["spec"]["limits"].array ?? [] where item["type"].string == "Container" {
            limits.merge(item["default"].object ?? [:]) { first, _ in first }
            requests.merge(item["defaultRequest"].object ?? [:]) { first, _ in first }
        }
        guard !limits.isEmpty || !requests.isEmpty else { return }
        for (list, prefix) in [("initContainers", "init container"), ("containers", "container")] {
            guard var containers = pod["spec"][list].array else { continue }
            for index in containers.indices {
                var resources = containers[index]["resources"]
                var setLimits: [String] = [], setRequests: [String] = []
                for (key, value) in limits where resources["limits"][key].isNull {
                    resources["limits"][key] = value
                    setLimits.append(key)
                }
                for (key, value) in requests where resources["requests"][key].isNull {
                    resources["requests"][key] = value
                    setRequests.append(key)
                }
                containers[index]["resources"] = resources
                let name = containers[index]["name"].string ?? ""
                if !setRequests.isEmpty {
                    notes.append("\(setRequests.sorted().joined(separator: ", ")) request for \(prefix) \(name)")
                }
                if !setLimits.isEmpty {
                    notes.append("\(setLimits.sorted().joined(separator: ", ")) limit for \(prefix) \(name)")
                }
            }
            pod["spec"][list] = .array(containers)
        }
    }

    /// Upstream's PodValidateLimitFunc: min, max and maxLimitRequestRatio per container and per pod.
    static func violations(_ range: JSON, pod: JSON) -> [String] {
        var reasons: [String] = []
        let containers = (pod["spec"]["initContainers"].array ?? []) + (pod["spec"]["containers"].array ?? [])
        for item in range["spec"]["limits"].array ?? [] {
            switch item["type"].string {
            case "Container":
                for container in containers {
                    reasons += check(
                        item, kind: "Container", requests: container["resources"]["requests"].object ?? [:],
                        limits: container["resources"]["limits"].object ?? [:])
                }
            case "Pod":
                let (requests, limits) = podTotals(pod)
                reasons += check(item, kind: "Pod", requests: requests, limits: limits)
            default:
                break
            }
        }
        return reasons
    }

    /// What the pod asks for as a whole: its containers' sums, or an init container's own if larger.
    static func podTotals(_ pod: JSON) -> (requests: [String: JSON], limits: [String: JSON]) {
        func totals(_ field: String) -> [String: JSON] {
            var sum: [String: Int64] = [:]
            var binary: Set<String> = []
            func add(_ container: JSON, _ combine: (Int64, Int64) -> Int64) {
                for (key, value) in container["resources"][field].object ?? [:] {
                    guard let text = value.string, let milli = Quantity.milli(text) else { continue }
                    sum[key] = sum[key].map { combine($0, milli) } ?? milli
                    if text.hasSuffix("i") { binary.insert(key) }
                }
            }
            for container in pod["spec"]["containers"].array ?? [] { add(container, +) }
            for container in pod["spec"]["initContainers"].array ?? [] { add(container, max) }
            return Dictionary(
                uniqueKeysWithValues: sum.map {
                    ($0.key, .string(Self.text(milli: $0.value, binary: binary.contains($0.key))))
                })
        }
        return (totals("requests"), totals("limits"))
    }

    /// A milli-unit amount written back as a quantity, with a binary suffix (Mi, Gi) where the amounts
    /// summed had one, as Go's Quantity keeps its operands' format.
    static func text(milli: Int64, binary: Bool) -> String {
        guard milli % 1000 == 0 else { return "\(milli)m" }
        var value = milli / 1000
        guard binary, value != 0 else { return Quantity.canonical(String(value)) ?? String(value) }
        var suffix = 0
        while value % 1024 == 0 && suffix < 6 {
            value /= 1024
            suffix += 1
        }
        return String(value) + ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][suffix]
    }

    static func check(_ item: JSON, kind: String, requests: [String: JSON], limits: [String: JSON]) -> [String] {
        var reasons: [String] = []
        func milli(_ value: JSON?) -> Int64? { value?.string.flatMap(Quantity.milli) }
        for (key, enforced) in (item["min"].object ?? [:]).sorted(by: { $0.key < $1.key }) {
            let bound = enforced.string ?? "", boundMilli = milli(enforced) ?? 0
            guard let request = requests[key] else {
                reasons.append("minimum \(key) usage per \(kind) is \(bound).  No request is specified")
                continue
            }
            if let value = milli(request), value < boundMilli {
                reasons.append("minimum \(key) usage per \(kind) is \(bound), but request is \(request.string ?? "")")
            } else if let limit = limits[key], let value = milli(limit), value < boundMilli {
                reasons.append("minimum \(key) usage per \(kind) is \(bound), but limit is \(limit.string ?? "")")
            }
        }
        for (key, enforced) in (item["max"].object ?? [:]).sorted(by: { $0.key < $1.key }) {
            let bound = enforced.string ?? "", boundMilli = milli(enforced) ?? 0
            guard let limit = limits[key] else {
                reasons.append("maximum \(key) usage per \(kind) is \(bound).  No limit is specified")
                continue
            }
            if let value = milli(limit), value > boundMilli {
                reasons.append("maximum \(key) usage per \(kind) is \(bound), but limit is \(limit.string ?? "")")
            } else if let request = requests[key], let value = milli(request), value > boundMilli {
                reasons.append("maximum \(key) usage per \(kind) is \(bound), but request is \(request.string ?? "")")
            }
        }
        for (key, enforced) in (item["maxLimitRequestRatio"].object ?? [:]).sorted(by: { $0.key < $1.key }) {
            let bound = enforced.string ?? ""
            guard let request = milli(requests[key]), request > 0 else {
                reasons.append(
                    "\(key) max limit to request ratio per \(kind) is \(bound), but no request is specified or request is 0"
                )
                continue
            }
            guard let limit = milli(limits[key]), limit > 0 else {
                reasons.append(
                    "\(key) max limit to request ratio per \(kind) is \(bound), but no limit is specified or limit is 0"
                )
                continue
            }
            let ratio = Double(limit) / Double(request)
            if ratio * 1000 > Double(milli(enforced) ?? 0) {
                reasons.append(
                    "\(key) max limit to request ratio per \(kind) is \(bound), but provided ratio is \(String(format: "%f", ratio))"
                )
            }
        }
        return reasons
    }
}
