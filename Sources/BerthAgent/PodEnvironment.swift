import BerthCRIProtocol
import BerthKube

/// A container's environment (kubelet_pods.go makeEnvironmentVariables, podFieldSelectorRuntimeValue,
/// pkg/fieldpath, pkg/api/v1/resource ExtractContainerResourceValue).
extension PodConfigs {
    /// makeEnvironmentVariables. envFrom first (each ConfigMap's or Secret's keys, with the prefix),
    /// then env in order, a later name replacing an earlier one: a value with its `$(VAR)` references
    /// expanded from the variables defined so far and the service variables; a valueFrom resolved from
    /// the pod's fields, the container's resources, or a ConfigMap or Secret key. An optional reference
    /// whose object or key is missing sets nothing; a required one fails with the kubelet's message.
    /// Then the service variables (`serviceEnvironment`: `KUBERNETES_SERVICE_HOST` and the docker-link
    /// variables of the namespace's services) that the container does not define itself.
    ///
    /// Variables come out in the order they were first defined (the kubelet's order is its map's).
    /// `configMaps` and `secrets` look an object's data up by namespace and name, nil when it does not
    /// exist. `nodeAllocatable` stands for a limit the container does not set in `resourceFieldRef`.
    /// `status.hostIPs` are `hostIPs`, or `hostIP` alone when that is empty.
    static func environment(
        _ container: CoreV1.Container, pod: CoreV1.Pod, podIP: String, podIPs: [String], hostIP: String,
        hostIPs: [String] = [], nodeName: String, nodeAllocatable: [String: Quantity],
        serviceEnvironment: [String: String] = [:],
        configMaps: (_ namespace: String, _ name: String) -> [String: String]?,
        secrets: (_ namespace: String, _ name: String) -> [String: [UInt8]]?
    ) throws(PodConfigError) -> [Runtime_V1_KeyValue] {
        let namespace = pod.metadata.namespace ?? ""
        var order: [String] = []
        var values: [String: String] = [:]
        func define(_ name: String, _ value: String) {
            if values.updateValue(value, forKey: name) == nil { order.append(name) }
        }
        var configMapCache: [String: [String: String]] = [:]
        var secretCache: [String: [String: [UInt8]]] = [:]
        func configMap(_ name: String) -> [String: String]? {
            if let cached = configMapCache[name] { return cached }
            let data = configMaps(namespace, name)
            configMapCache[name] = data
            return data
        }
        func secret(_ name: String) -> [String: [UInt8]]? {
            if let cached = secretCache[name] { return cached }
            let data = secrets(namespace, name)
            secretCache[name] = data
            return data
        }

        for source in container.envFrom {
            let prefix = source.prefix ?? ""
            if let reference = source.configMapRef {
                let name = reference.name ?? ""
                guard let data = configMap(name) else {
                    if reference.optional == true { continue }
                    throw PodConfigError("configmap \"\(name)\" not found")
                }
                for key in data.keys.sorted() where isEnvironmentName(prefix + key) {
                    define(prefix + key, data[key]!)
                }
            } else if let reference = source.secretRef {
                let name = reference.name ?? ""
                guard let data = secret(name) else {
                    if reference.optional == true { continue }
                    throw PodConfigError("secret \"\(name)\" not found")
                }
                for key in data.keys.sorted() where isEnvironmentName(prefix + key) {
                    define(prefix + key, String(decoding: data[key]!, as: UTF8.self))
                }
            }
        }

        let ips = podIPs.isEmpty ? (podIP.isEmpty ? [] : [podIP]) : podIPs
        let nodeIPs = hostIPs.isEmpty ? (hostIP.isEmpty ? [] : [hostIP]) : hostIPs
        for variable in container.env {
            var value = variable.value ?? ""
            if !value.isEmpty {
                value = expand(value) { values[$0] ?? serviceEnvironment[$0] }
            } else if let source = variable.valueFrom {
                if let field = source.fieldRef {
                    value = try fieldValue(field, pod: pod, podIPs: ips, hostIPs: nodeIPs, nodeName: nodeName)
                } else if let field = source.resourceFieldRef {
                    value = try resourceValue(field, container: container, pod: pod, allocatable: nodeAllocatable)
                } else if let reference = source.configMapKeyRef {
                    let name = reference.name ?? ""
                    guard let data = configMap(name) else {
                        if reference.optional == true { continue }
                        throw PodConfigError("configmap \"\(name)\" not found")
                    }
                    guard let found = data[reference.key] else {
                        if reference.optional == true { continue }
                        throw PodConfigError("couldn't find key \(reference.key) in ConfigMap \(namespace)/\(name)")
                    }
                    value = found
                } else if let reference = source.secretKeyRef {
                    let name = reference.name ?? ""
                    guard let data = secret(name) else {
                        if reference.optional == true { continue }
                        throw PodConfigError("secret \"\(name)\" not found")
                    }
                    guard let found = data[reference.key] else {
                        if reference.optional == true { continue }
                        throw PodConfigError("couldn't find key \(reference.key) in Secret \(namespace)/\(name)")
                    }
                    value = String(decoding: found, as: UTF8.self)
                }
            }
            define(variable.name, value)
        }

        var result = order.map { keyValue($0, values[$0]!) }
        for name in serviceEnvironment.keys.sorted() where values[name] == nil {
            result.append(keyValue(name, serviceEnvironment[name]!))
        }
        return result
    }

    /// Whether envFrom may define `name`. The kubelet (1.30 on) passes every key through, relying on the
    /// API server: ConfigMap and Secret keys and prefixes are printable ASCII without `=` (the relaxed
    /// rule). Only a name that could not be a variable at all (empty, `=`, control or non-ASCII
    /// characters) is left out here.
    static func isEnvironmentName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "=") }
    }

    /// podFieldSelectorRuntimeValue: the downward API's pod fields. `podIPs` and `hostIPs` come first
    /// for `status.podIP` and `status.hostIP` and comma-joined for the plural fields.
    static func fieldValue(
        _ selector: CoreV1.ObjectFieldSelector, pod: CoreV1.Pod, podIPs: [String], hostIPs: [String],
        nodeName: String
    ) throws(PodConfigError) -> String {
        let version = selector.apiVersion ?? "v1"
        guard version.isEmpty || version == "v1" else {
            throw PodConfigError("unsupported pod version: \(version)")
        }
        let path = selector.fieldPath
        if let (base, key) = subscripted(path) {
            switch base {
            case "metadata.annotations": return pod.metadata.annotations[key] ?? ""
            case "metadata.labels": return pod.metadata.labels[key] ?? ""
            default: throw PodConfigError("field label does not support subscript: \(path)")
            }
        }
        switch path {
        case "metadata.name": return pod.metadata.name ?? ""
        case "metadata.namespace": return pod.metadata.namespace ?? ""
        case "metadata.uid": return pod.metadata.uid ?? ""
        case "metadata.labels": return formatMap(pod.metadata.labels)
        case "metadata.annotations": return formatMap(pod.metadata.annotations)
        case "spec.nodeName", "spec.host":
            if let name = pod.spec.nodeName, !name.isEmpty { return name }
            return nodeName
        case "spec.serviceAccountName": return pod.spec.serviceAccountName ?? ""
        case "status.hostIP": return hostIPs.first ?? ""
        case "status.hostIPs": return hostIPs.joined(separator: ",")
        case "status.podIP": return podIPs.first ?? ""
        case "status.podIPs": return podIPs.joined(separator: ",")
        case "spec.restartPolicy", "spec.schedulerName", "status.phase":
            throw PodConfigError("unsupported fieldPath: \(path)")
        default: throw PodConfigError("field label not supported: \(path)")
        }
    }

    /// fieldpath.SplitMaybeSubscriptedPath: `metadata.labels['app']` as (`metadata.labels`, `app`).
    static func subscripted(_ path: String) -> (String, String)? {
        guard path.hasSuffix("']"), let open = path.range(of: "['") else { return nil }
        let base = String(path[..<open.lowerBound])
        guard !base.isEmpty else { return nil }
        let key = String(path[open.upperBound...].dropLast(2))
        return (base, key)
    }

    /// fieldpath.FormatMap: `key="value"` lines in key order, the value quoted as Go's %q.
    static func formatMap(_ map: [String: String]) -> String {
        map.keys.sorted().map { key in
            var quoted = "\""
            for scalar in map[key]!.unicodeScalars {
                switch scalar {
                case "\"": quoted += "\\\""
                case "\\": quoted += "\\\\"
                case "\n": quoted += "\\n"
                case "\t": quoted += "\\t"
                case "\r": quoted += "\\r"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7F {
                        let hex = String(scalar.value, radix: 16)
                        quoted += "\\x" + (hex.count < 2 ? "0" + hex : hex)
                    } else {
                        quoted.unicodeScalars.append(scalar)
                    }
                }
            }
            return key + "=" + quoted + "\""
        }.joined(separator: "\n")
    }

    /// containerResourceRuntimeValue with defaultPodLimitsForDownwardAPI: the container's (or the named
    /// container's) request or limit over the divisor (default 1), rounded up; a CPU, memory or
    /// ephemeral-storage limit the container does not set is the node's allocatable amount.
    static func resourceValue(
        _ selector: CoreV1.ResourceFieldSelector, container: CoreV1.Container, pod: CoreV1.Pod,
        allocatable: [String: Quantity]
    ) throws(PodConfigError) -> String {
        func withDefaultLimits(_ container: CoreV1.Container) -> CoreV1.Container {
            var container = container
            for name in ["cpu", "memory", "ephemeral-storage"] {
                let limit = container.resources.limits[name]
                if limit == nil || isZero(limit!), let amount = allocatable[name] {
                    container.resources.limits[name] = amount
                }
            }
            return container
        }
        var target = withDefaultLimits(container)
        if let name = selector.containerName, !name.isEmpty {
            if let regular = pod.spec.containers.first(where: { $0.name == name }) {
                target = withDefaultLimits(regular)
            } else if let initContainer = pod.spec.initContainers.first(where: { $0.name == name }) {
                target = initContainer
            } else {
                throw PodConfigError("container \(name) not found")
            }
        }
        let resource = selector.resource
        let divisor = isZero(selector.divisor) ? Quantity("1") : selector.divisor
        let parts = resource.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0] == "limits" || parts[0] == "requests",
            ["cpu", "memory", "ephemeral-storage"].contains(parts[1]) || parts[1].hasPrefix("hugepages-")
        else { throw PodConfigError("unsupported container resource : \(resource)") }
        let list = parts[0] == "limits" ? target.resources.limits : target.resources.requests
        let amount = list[parts[1]]
        if parts[1] == "cpu" { return String(ceilingDivide(milli(amount), milli(divisor))) }
        return String(ceilingDivide(units(amount), units(divisor)))
    }

    static func isZero(_ quantity: Quantity) -> Bool {
        quantity.milliValue == 0 || (quantity.milliValue == nil && quantity.value == 0)
    }

    /// ⌈a / b⌉ for the non-negative amounts of resources; `a` itself for a divisor below 1.
    static func ceilingDivide(_ a: Int64, _ b: Int64) -> Int64 {
        guard b > 0 else { return a }
        let quotient = a / b
        return a % b > 0 ? quotient + 1 : quotient
    }
}
