/// What the server knows about one served resource: everything discovery, routing, storage and printing need.
public struct ResourceType: Sendable {
    public var group: String
    public var version: String
    public var kind: String
    public var plural: String
    public var singular: String
    public var namespaced: Bool
    public var shortNames: [String] = []
    public var categories: [String] = []
    /// "status", "scale", "binding", "finalize" (namespaces).
    public var subresources: [String] = []
    /// Whether the object has spec (so `metadata.generation` counts spec changes).
    public var hasSpec = true
    /// The group whose storage this resource shares (events.k8s.io/v1 Events are stored as core/v1
    /// Events); nil: its own.
    public var storageGroup: String? = nil
    /// The kind's own rules on the generic request path (defaulting, validation, update rules, printing,
    /// field selectors, storage hooks): Strategies/.
    var strategy: any ResourceStrategy = DefaultStrategy()

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var groupVersion: String { apiVersion }
    public var listKind: String { kind + "List" }
    /// The store key prefix for all objects of this type.
    public var keyPrefix: String {
        let stored = storageGroup ?? group
        return "/registry/\(stored.isEmpty ? "core" : stored)/\(plural)/"
    }
    /// A second view of another resource's objects: left out where each object must be seen once
    /// (garbage collection, namespace deletion, quota counts).
    public var sharesStorage: Bool { storageGroup != nil }
    public func key(namespace: String?, name: String) -> String {
        namespaced ? keyPrefix + (namespace ?? "") + "/" + name : keyPrefix + name
    }
    public func prefix(namespace: String?) -> String {
        if namespaced, let namespace, !namespace.isEmpty { return keyPrefix + namespace + "/" }
        return keyPrefix
    }
    public static let verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
}

/// The served resources (core/v1, apps/v1, batch/v1, discovery.k8s.io/v1, coordination.k8s.io/v1, policy/v1,
/// scheduling.k8s.io/v1, networking.k8s.io/v1, storage.k8s.io/v1, node.k8s.io/v1, rbac.authorization.k8s.io/v1).
public enum Registry {
    public static let all: [ResourceType] = [
        .init(
            group: "", version: "v1", kind: "Namespace", plural: "namespaces", singular: "namespace", namespaced: false,
            shortNames: ["ns"], subresources: ["status", "finalize"], strategy: NamespaceStrategy()),
        .init(
            group: "", version: "v1", kind: "Pod", plural: "pods", singular: "pod", namespaced: true,
            shortNames: ["po"], categories: ["all"],
            subresources: ["status", "binding", "eviction", "log", "exec", "attach", "portforward"],
            strategy: PodStrategy()),
        .init(
            group: "", version: "v1", kind: "Node", plural: "nodes", singular: "node", namespaced: false,
            shortNames: ["no"], subresources: ["status"], strategy: NodeStrategy()),
        .init(
            group: "", version: "v1", kind: "Service", plural: "services", singular: "service", namespaced: true,
            shortNames: ["svc"], categories: ["all"], subresources: ["status"], strategy: ServiceStrategy()),
        .init(
            group: "", version: "v1", kind: "Endpoints", plural: "endpoints", singular: "endpoints", namespaced: true,
            shortNames: ["ep"], hasSpec: false, strategy: EndpointsStrategy()),
        .init(
            group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", singular: "configmap", namespaced: true,
            shortNames: ["cm"], hasSpec: false, strategy: ConfigMapStrategy()),
        .init(
            group: "", version: "v1", kind: "Secret", plural: "secrets", singular: "secret", namespaced: true,
            hasSpec: false, strategy: SecretStrategy()),
        .init(
            group: "", version: "v1", kind: "Event", plural: "events", singular: "event", namespaced: true,
            shortNames: ["ev"], hasSpec: false, strategy: EventStrategy()),
        .init(
            group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts", singular: "serviceaccount",
            namespaced: true, shortNames: ["sa"], subresources: ["token"], hasSpec: false,
            strategy: ServiceAccountStrategy()),
        .init(
            group: "", version: "v1", kind: "ReplicationController", plural: "replicationcontrollers",
            singular: "replicationcontroller", namespaced: true, shortNames: ["rc"], categories: ["all"],
            subresources: ["status", "scale"], strategy: ReplicationControllerStrategy()),
        .init(
            group: "", version: "v1", kind: "LimitRange", plural: "limitranges", singular: "limitrange",
            namespaced: true, shortNames: ["limits"], strategy: LimitRangeStrategy()),
        .init(
            group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims",
            singular: "persistentvolumeclaim", namespaced: true, shortNames: ["pvc"], subresources: ["status"],
            strategy: PersistentVolumeClaimStrategy()),
        .init(
            group: "", version: "v1", kind: "PersistentVolume", plural: "persistentvolumes",
            singular: "persistentvolume", namespaced: false, shortNames: ["pv"], subresources: ["status"],
            strategy: PersistentVolumeStrategy()),
        .init(
            group: "", version: "v1", kind: "ResourceQuota", plural: "resourcequotas", singular: "resourcequota",
            namespaced: true, shortNames: ["quota"], subresources: ["status"], strategy: ResourceQuotaStrategy()),
        .init(
            group: "", version: "v1", kind: "PodTemplate", plural: "podtemplates", singular: "podtemplate",
            namespaced: true, hasSpec: false, strategy: PodTemplateStrategy()),
        .init(
            group: "apps", version: "v1", kind: "Deployment", plural: "deployments", singular: "deployment",
            namespaced: true,
            shortNames: ["deploy"], categories: ["all"], subresources: ["status", "scale"],
            strategy: DeploymentStrategy()),
        .init(
            group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets", singular: "replicaset",
            namespaced: true,
            shortNames: ["rs"], categories: ["all"], subresources: ["status", "scale"], strategy: ReplicaSetStrategy()),
        .init(
            group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets", singular: "daemonset",
            namespaced: true,
            shortNames: ["ds"], categories: ["all"], subresources: ["status"], strategy: DaemonSetStrategy()),
        .init(
            group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets", singular: "statefulset",
            namespaced: true,
            shortNames: ["sts"], categories: ["all"], subresources: ["status", "scale"],
            strategy: StatefulSetStrategy()),
        .init(
            group: "apps", version: "v1", kind: "ControllerRevision", plural: "controllerrevisions",
            singular: "controllerrevision", namespaced: true, hasSpec: false, strategy: ControllerRevisionStrategy()),
        .init(
            group: "batch", version: "v1", kind: "Job", plural: "jobs", singular: "job", namespaced: true,
            categories: ["all"], subresources: ["status"], strategy: JobStrategy()),
        .init(
            group: "batch", version: "v1", kind: "CronJob", plural: "cronjobs", singular: "cronjob", namespaced: true,
            shortNames: ["cj"], categories: ["all"], subresources: ["status"], strategy: CronJobStrategy()),
        .init(
            group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices",
            singular: "endpointslice", namespaced: true, hasSpec: false, strategy: EndpointSliceStrategy()),
        .init(
            group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", singular: "lease",
            namespaced: true, strategy: LeaseStrategy()),
        .init(
            group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets",
            singular: "poddisruptionbudget", namespaced: true, shortNames: ["pdb"], subresources: ["status"],
            strategy: PodDisruptionBudgetStrategy()),
        .init(
            group: "scheduling.k8s.io", version: "v1", kind: "PriorityClass", plural: "priorityclasses",
            singular: "priorityclass", namespaced: false, shortNames: ["pc"], hasSpec: false,
            strategy: PriorityClassStrategy()),
        .init(
            group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses", singular: "ingress",
            namespaced: true, shortNames: ["ing"], subresources: ["status"], strategy: IngressStrategy()),
        .init(
            group: "networking.k8s.io", version: "v1", kind: "IngressClass", plural: "ingressclasses",
            singular: "ingressclass", namespaced: false, strategy: IngressClassStrategy()),
        .init(
            group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies",
            singular: "networkpolicy", namespaced: true, shortNames: ["netpol"], strategy: NetworkPolicyStrategy()),
        .init(
            group: "storage.k8s.io", version: "v1", kind: "StorageClass", plural: "storageclasses",
            singular: "storageclass", namespaced: false, shortNames: ["sc"], hasSpec: false,
            strategy: StorageClassStrategy()),
        .init(
            group: "storage.k8s.io", version: "v1", kind: "CSIDriver", plural: "csidrivers", singular: "csidriver",
            namespaced: false, strategy: CSIDriverStrategy()),
        .init(
            group: "storage.k8s.io", version: "v1", kind: "CSINode", plural: "csinodes", singular: "csinode",
            namespaced: false, strategy: CSINodeStrategy()),
        .init(
            group: "storage.k8s.io", version: "v1", kind: "CSIStorageCapacity", plural: "csistoragecapacities",
            singular: "csistoragecapacity", namespaced: true, hasSpec: false, strategy: CSIStorageCapacityStrategy()),
        .init(
            group: "storage.k8s.io", version: "v1", kind: "VolumeAttachment", plural: "volumeattachments",
            singular: "volumeattachment", namespaced: false, subresources: ["status"],
            strategy: VolumeAttachmentStrategy()),
        .init(
            group: "rbac.authorization.k8s.io", version: "v1", kind: "Role", plural: "roles", singular: "role",
            namespaced: true, hasSpec: false, strategy: RoleStrategy(clusterScoped: false)),
        .init(
            group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRole", plural: "clusterroles",
            singular: "clusterrole", namespaced: false, hasSpec: false, strategy: RoleStrategy(clusterScoped: true)),
        .init(
            group: "rbac.authorization.k8s.io", version: "v1", kind: "RoleBinding", plural: "rolebindings",
            singular: "rolebinding", namespaced: true, hasSpec: false,
            strategy: RoleBindingStrategy(clusterScoped: false)),
        .init(
            group: "rbac.authorization.k8s.io", version: "v1", kind: "ClusterRoleBinding",
            plural: "clusterrolebindings",
            singular: "clusterrolebinding", namespaced: false, hasSpec: false,
            strategy: RoleBindingStrategy(clusterScoped: true)),
        .init(
            group: "node.k8s.io", version: "v1", kind: "RuntimeClass", plural: "runtimeclasses",
            singular: "runtimeclass", namespaced: false, hasSpec: false, strategy: RuntimeClassStrategy()),
        .init(
            group: "autoscaling", version: "v2", kind: "HorizontalPodAutoscaler",
            plural: "horizontalpodautoscalers", singular: "horizontalpodautoscaler", namespaced: true,
            shortNames: ["hpa"], categories: ["all"], subresources: ["status"],
            strategy: HorizontalPodAutoscalerStrategy()),
        .init(
            group: "autoscaling", version: "v1", kind: "HorizontalPodAutoscaler",
            plural: "horizontalpodautoscalers", singular: "horizontalpodautoscaler", namespaced: true,
            shortNames: ["hpa"], categories: ["all"], subresources: ["status"], storageGroup: "autoscaling",
            strategy: HorizontalPodAutoscalerV1Strategy()),
        .init(
            group: "events.k8s.io", version: "v1", kind: "Event", plural: "events", singular: "event",
            namespaced: true, shortNames: ["ev"], hasSpec: false, storageGroup: "",
            strategy: EventsV1EventStrategy()),
        .init(
            group: "apiextensions.k8s.io", version: "v1", kind: "CustomResourceDefinition",
            plural: "customresourcedefinitions", singular: "customresourcedefinition", namespaced: false,
            shortNames: ["crd", "crds"], categories: ["api-extensions"], subresources: ["status"],
            strategy: CustomResourceDefinitionStrategy()),
        .init(
            group: "admissionregistration.k8s.io", version: "v1", kind: "MutatingWebhookConfiguration",
            plural: "mutatingwebhookconfigurations", singular: "mutatingwebhookconfiguration", namespaced: false,
            categories: ["api-extensions"], strategy: WebhookConfigurationStrategy(mutating: true)),
        .init(
            group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingWebhookConfiguration",
            plural: "validatingwebhookconfigurations", singular: "validatingwebhookconfiguration", namespaced: false,
            categories: ["api-extensions"], strategy: WebhookConfigurationStrategy(mutating: false)),
        .init(
            group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicy",
            plural: "validatingadmissionpolicies", singular: "validatingadmissionpolicy", namespaced: false,
            categories: ["api-extensions"], subresources: ["status"], strategy: ValidatingAdmissionPolicyStrategy()),
        .init(
            group: "admissionregistration.k8s.io", version: "v1", kind: "ValidatingAdmissionPolicyBinding",
            plural: "validatingadmissionpolicybindings", singular: "validatingadmissionpolicybinding",
            namespaced: false, categories: ["api-extensions"], strategy: ValidatingAdmissionPolicyBindingStrategy()),
        .init(
            group: "flowcontrol.apiserver.k8s.io", version: "v1", kind: "FlowSchema", plural: "flowschemas",
            singular: "flowschema", namespaced: false, subresources: ["status"], strategy: FlowSchemaStrategy()),
        .init(
            group: "flowcontrol.apiserver.k8s.io", version: "v1", kind: "PriorityLevelConfiguration",
            plural: "prioritylevelconfigurations", singular: "prioritylevelconfiguration", namespaced: false,
            subresources: ["status"], strategy: PriorityLevelConfigurationStrategy()),
    ]

    /// Groups in preferred order; each served at one version.
    public static let groups: [String] = [
        "apps", "batch", "discovery.k8s.io", "coordination.k8s.io", "policy", "scheduling.k8s.io", "networking.k8s.io",
        "storage.k8s.io", "node.k8s.io", "apiextensions.k8s.io", "events.k8s.io", "autoscaling",
        "rbac.authorization.k8s.io", "admissionregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io",
    ]

    /// Every resource with objects of its own (no second views of another's storage).
    public static var stored: [ResourceType] { all.filter { !$0.sharesStorage } }

    public static func find(group: String, version: String, plural: String) -> ResourceType? {
        all.first { $0.group == group && $0.version == version && $0.plural == plural }
    }
    public static func find(apiVersion: String, kind: String) -> ResourceType? {
        all.first { $0.apiVersion == apiVersion && $0.kind == kind }
    }
    public static func versions(of group: String) -> [String] {
        Array(Set(all.filter { $0.group == group }.map(\.version))).sorted()
    }
}
