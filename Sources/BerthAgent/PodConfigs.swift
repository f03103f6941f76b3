import BerthCRIProtocol
import BerthKube

/// A pod as the CRI messages the kubelet would send for it: pure functions, no I/O (what the kubelet
/// reads from the host or the API — the host's resolv.conf, ConfigMaps, Secrets, the machine's memory —
/// is passed in). Split by concept: the sandbox and its DNS (PodSandboxConfigs.swift), containers and
/// `$(VAR)` expansion (ContainerConfigs.swift), cgroup resources (PodResources.swift) and the
/// environment (PodEnvironment.swift).
enum PodConfigs {
    /// The kubelet's labels on sandboxes and containers (k8s.io/kubelet/pkg/types).
    static let podNameLabel = "io.kubernetes.pod.name"
    static let podNamespaceLabel = "io.kubernetes.pod.namespace"
    static let podUIDLabel = "io.kubernetes.pod.uid"
    static let containerNameLabel = "io.kubernetes.container.name"

    /// The pod's cgroup under the kubelet's cgroupfs naming (pod_container_manager_linux.go):
    /// Guaranteed pods directly under the root, the others under `burstable` or `besteffort`.
    static func cgroupParent(_ pod: CoreV1.Pod, root: String) -> String {
        var base = root
        while base.hasSuffix("/") { base.removeLast() }
        let leaf = "pod" + (pod.metadata.uid ?? "")
        switch PodQOS.of(pod) {
        case .guaranteed: return base + "/" + leaf
        case .bestEffort: return base + "/besteffort/" + leaf
        default: return base + "/burstable/" + leaf
        }
    }

    /// The pod's namespaces (kuberuntime/util NamespacesForPod), shared by the sandbox and every
    /// container: the node's network, PID and IPC namespaces on request; one PID namespace for the pod
    /// with shareProcessNamespace, else one per container.
    static func namespaceOptions(_ pod: CoreV1.Pod) -> Runtime_V1_NamespaceOption {
        var options = Runtime_V1_NamespaceOption()
        options.network = pod.spec.hostNetwork == true ? .node : .pod
        options.ipc = pod.spec.hostIPC == true ? .node : .pod
        if pod.spec.hostPID == true {
            options.pid = .node
        } else if pod.spec.shareProcessNamespace == true {
            options.pid = .pod
        } else {
            options.pid = .container
        }
        return options
    }

    /// kubecontainer.HasPrivilegedContainer: any init, regular or ephemeral container privileged.
    static func hasPrivilegedContainer(_ pod: CoreV1.Pod) -> Bool {
        (pod.spec.initContainers + pod.spec.containers).contains { $0.securityContext?.privileged == true }
            || pod.spec.ephemeralContainers.contains { $0.securityContext?.privileged == true }
    }

    /// newPodLabels: the pod's labels and the three the kubelet finds its sandboxes by.
    static func podLabels(_ pod: CoreV1.Pod) -> [String: String] {
        var labels = pod.metadata.labels
        labels[podNameLabel] = pod.metadata.name ?? ""
        labels[podNamespaceLabel] = pod.metadata.namespace ?? ""
        labels[podUIDLabel] = pod.metadata.uid ?? ""
        return labels
    }

    /// CPU in millicores (Quantity.MilliValue, rounded up); nil or malformed is 0.
    static func milli(_ quantity: Quantity?) -> Int64 { quantity?.milliValue ?? 0 }
    /// Bytes or counts (Quantity.Value, rounded up); nil or malformed is 0.
    static func units(_ quantity: Quantity?) -> Int64 { quantity?.value ?? 0 }

    /// `a + b`, held at Int64's bounds rather than trapping.
    static func sum(_ a: Int64, _ b: Int64) -> Int64 {
        let (total, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : total
    }
}

/// Why a pod's configuration could not be made; `message` is the kubelet's, which becomes the waiting
/// container's CreateContainerConfigError message (`configmap "app" not found`).
struct PodConfigError: Error, CustomStringConvertible, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// The pod's quality-of-service class (pkg/apis/core/v1/helper/qos GetPodQOS).
enum PodQOS {
    /// `status.qosClass` when the API server recorded it (as GetPodQOS), else ``compute(_:)``.
    static func of(_ pod: CoreV1.Pod) -> CoreV1.PodQOSClass {
        if let recorded = pod.status.qosClass, !recorded.rawValue.isEmpty { return recorded }
        return compute(pod)
    }

    /// ComputePodQOS over the init and regular containers' CPU and memory: BestEffort without any
    /// request or limit; Guaranteed when every container limits both and the summed requests equal the
    /// summed limits; Burstable otherwise. A limit without a request requests the limit, as the API
    /// server's defaulting makes it.
    static func compute(_ pod: CoreV1.Pod) -> CoreV1.PodQOSClass {
        var requests: [String: Int64] = [:]
        var limits: [String: Int64] = [:]
        var guaranteed = true
        for container in pod.spec.containers + pod.spec.initContainers {
            var containerRequests = container.resources.requests
            for (name, limit) in container.resources.limits where containerRequests[name] == nil {
                containerRequests[name] = limit
            }
            var limited = 0
            for name in ["cpu", "memory"] {
                if let amount = containerRequests[name].map({ amount($0, name) }), amount > 0 {
                    requests[name] = PodConfigs.sum(requests[name] ?? 0, amount)
                }
                if let amount = container.resources.limits[name].map({ amount($0, name) }), amount > 0 {
                    limits[name] = PodConfigs.sum(limits[name] ?? 0, amount)
                    limited += 1
                }
            }
            if limited < 2 { guaranteed = false }
        }
        if requests.isEmpty && limits.isEmpty { return .bestEffort }
        if guaranteed && requests.contains(where: { limits[$0.key] != $0.value }) { guaranteed = false }
        return guaranteed && requests.count == limits.count ? .guaranteed : .burstable
    }

    /// CPU compared in millicores, memory in bytes.
    private static func amount(_ quantity: Quantity, _ name: String) -> Int64 {
        name == "cpu" ? PodConfigs.milli(quantity) : PodConfigs.units(quantity)
    }
}
