/// A compact schema of the served types: drives type checks (400 on wrong types), strict field
/// validation (`fieldValidation=Strict` → 400 on unknown fields) and the OpenAPI documents.
indirect enum Schema: Sendable {
    case string, int, bool, number, intOrString, any
    /// An object with no declared fields (status, probes …): any fields allowed.
    case freeform
    case map(Schema)
    case array(Schema, mergeKey: String? = nil, strategy: String? = nil)
    case object(String, [String: Schema])
    case ref(String)

    static func def(_ name: String) -> Schema { definitions[name] ?? .freeform }

    static let objectMeta: Schema = .object(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        [
            "name": .string, "generateName": .string, "namespace": .string, "uid": .string, "resourceVersion": .string,
            "generation": .int, "creationTimestamp": .string, "deletionTimestamp": .string,
            "deletionGracePeriodSeconds": .int,
            "labels": .map(.string), "annotations": .map(.string), "selfLink": .string,
            "ownerReferences": .array(
                .object(
                    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
                    [
                        "apiVersion": .string, "kind": .string, "name": .string, "uid": .string, "controller": .bool,
                        "blockOwnerDeletion": .bool,
                    ]), mergeKey: "uid", strategy: "merge"),
            "finalizers": .array(.string, strategy: "merge"), "managedFields": .array(.freeform),
        ])
    static let labelSelector: Schema = .object(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        [
            "matchLabels": .map(.string),
            "matchExpressions": .array(
                .object(
                    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
                    ["key": .string, "operator": .string, "values": .array(.string)])),
        ])
    static let container: Schema = .object(
        "io.k8s.api.core.v1.Container",
        [
            "name": .string, "image": .string, "command": .array(.string), "args": .array(.string),
            "workingDir": .string,
            "ports": .array(
                .object(
                    "io.k8s.api.core.v1.ContainerPort",
                    [
                        "name": .string, "containerPort": .int, "protocol": .string, "hostPort": .int,
                        "hostIP": .string,
                    ]), mergeKey: "containerPort", strategy: "merge"),
            "env": .array(
                .object("io.k8s.api.core.v1.EnvVar", ["name": .string, "value": .string, "valueFrom": .freeform]),
                mergeKey: "name", strategy: "merge"),
            "envFrom": .array(.freeform), "resources": .freeform,
            "volumeMounts": .array(
                .object(
                    "io.k8s.api.core.v1.VolumeMount",
                    [
                        "name": .string, "mountPath": .string, "readOnly": .bool, "subPath": .string,
                        "subPathExpr": .string,
                        "mountPropagation": .string, "recursiveReadOnly": .string,
                    ]), mergeKey: "mountPath", strategy: "merge"),
            "volumeDevices": .array(.freeform, mergeKey: "devicePath", strategy: "merge"),
            "livenessProbe": .freeform, "readinessProbe": .freeform, "startupProbe": .freeform, "lifecycle": .freeform,
            "terminationMessagePath": .string, "terminationMessagePolicy": .string, "imagePullPolicy": .string,
            "securityContext": .freeform, "stdin": .bool, "stdinOnce": .bool, "tty": .bool,
            "resizePolicy": .array(.freeform),
            "restartPolicy": .string,
        ])
    static let podSpec: Schema = .object(
        "io.k8s.api.core.v1.PodSpec",
        [
            "containers": .array(container, mergeKey: "name", strategy: "merge"),
            "initContainers": .array(container, mergeKey: "name", strategy: "merge"),
            "ephemeralContainers": .array(.freeform, mergeKey: "name", strategy: "merge"),
            "volumes": .array(.freeform, mergeKey: "name", strategy: "merge,retainKeys"),
            "restartPolicy": .string, "terminationGracePeriodSeconds": .int, "activeDeadlineSeconds": .int,
            "dnsPolicy": .string,
            "nodeSelector": .map(.string), "serviceAccountName": .string, "serviceAccount": .string,
            "automountServiceAccountToken": .bool,
            "nodeName": .string, "hostNetwork": .bool, "hostPID": .bool, "hostIPC": .bool,
            "shareProcessNamespace": .bool,
            "securityContext": .freeform, "imagePullSecrets": .array(.freeform, mergeKey: "name", strategy: "merge"),
            "hostname": .string, "subdomain": .string, "affinity": .freeform, "schedulerName": .string,
            "tolerations": .array(.freeform),
            "hostAliases": .array(.freeform, mergeKey: "ip", strategy: "merge"), "priorityClassName": .string,
            "priority": .int,
            "dnsConfig": .freeform, "readinessGates": .array(.freeform), "runtimeClassName": .string,
            "enableServiceLinks": .bool,
            "preemptionPolicy": .string, "overhead": .freeform,
            "topologySpreadConstraints": .array(.freeform, mergeKey: "topologyKey", strategy: "merge"),
            "setHostnameAsFQDN": .bool, "os": .freeform, "hostUsers": .bool, "schedulingGates": .array(.freeform),
            "resourceClaims": .array(.freeform), "resources": .freeform,
        ])
    static let podTemplate: Schema = .object(
        "io.k8s.api.core.v1.PodTemplateSpec", ["metadata": objectMeta, "spec": podSpec])

    static let definitions: [String: Schema] = [:]

    /// Fields of each kind besides apiVersion/kind/metadata.
    static func fields(_ kind: String) -> [String: Schema] {
        switch kind {
        case "Pod": return ["spec": podSpec, "status": .freeform]
        case "Deployment":
            return [
                "spec": .object(
                    "io.k8s.api.apps.v1.DeploymentSpec",
                    [
                        "replicas": .int, "selector": labelSelector, "template": podTemplate, "strategy": .freeform,
                        "minReadySeconds": .int,
                        "revisionHistoryLimit": .int, "paused": .bool, "progressDeadlineSeconds": .int,
                    ]), "status": .freeform,
            ]
        case "ReplicaSet":
            return [
                "spec": .object(
                    "io.k8s.api.apps.v1.ReplicaSetSpec",
                    [
                        "replicas": .int, "selector": labelSelector, "template": podTemplate, "minReadySeconds": .int,
                    ]), "status": .freeform,
            ]
        case "DaemonSet":
            return [
                "spec": .object(
                    "io.k8s.api.apps.v1.DaemonSetSpec",
                    [
                        "selector": labelSelector, "template": podTemplate, "updateStrategy": .freeform,
                        "minReadySeconds": .int,
                        "revisionHistoryLimit": .int,
                    ]), "status": .freeform,
            ]
        case "Service":
            return [
                "spec": .object(
                    "io.k8s.api.core.v1.ServiceSpec",
                    [
                        "ports": .array(
                            .object(
                                "io.k8s.api.core.v1.ServicePort",
                                [
                                    "name": .string, "protocol": .string, "appProtocol": .string, "port": .int,
                                    "targetPort": .intOrString, "nodePort": .int,
                                ]), mergeKey: "port", strategy: "merge"),
                        "selector": .map(.string), "clusterIP": .string, "clusterIPs": .array(.string), "type": .string,
                        "externalIPs": .array(.string), "sessionAffinity": .string, "loadBalancerIP": .string,
                        "loadBalancerSourceRanges": .array(.string), "externalName": .string,
                        "externalTrafficPolicy": .string,
                        "healthCheckNodePort": .int, "publishNotReadyAddresses": .bool,
                        "sessionAffinityConfig": .freeform,
                        "ipFamilies": .array(.string), "ipFamilyPolicy": .string,
                        "allocateLoadBalancerNodePorts": .bool,
                        "loadBalancerClass": .string, "internalTrafficPolicy": .string, "trafficDistribution": .string,
                    ]), "status": .freeform,
            ]
        case "Namespace": return ["spec": .freeform, "status": .freeform]
        case "Node":
            return [
                "spec": .object(
                    "io.k8s.api.core.v1.NodeSpec",
                    [
                        "podCIDR": .string, "podCIDRs": .array(.string), "providerID": .string, "unschedulable": .bool,
                        "taints": .array(.freeform), "configSource": .freeform, "externalID": .string,
                    ]), "status": .freeform,
            ]
        case "ConfigMap": return ["data": .map(.string), "binaryData": .map(.string), "immutable": .bool]
        case "Secret": return ["data": .map(.string), "stringData": .map(.string), "type": .string, "immutable": .bool]
        case "Endpoints": return ["subsets": .array(.freeform)]
        case "Event":
            return [
                "involvedObject": .freeform, "reason": .string, "message": .string, "source": .freeform,
                "firstTimestamp": .string,
                "lastTimestamp": .string, "count": .int, "type": .string, "eventTime": .any, "series": .freeform,
                "action": .string, "related": .freeform, "reportingComponent": .string, "reportingInstance": .string,
            ]
        case "ServiceAccount":
            return [
                "secrets": .array(.freeform), "imagePullSecrets": .array(.freeform),
                "automountServiceAccountToken": .bool,
            ]
        case "EndpointSlice":
            return ["addressType": .string, "endpoints": .array(.freeform), "ports": .array(.freeform)]
        case "Lease":
            return [
                "spec": .object(
                    "io.k8s.api.coordination.v1.LeaseSpec",
                    [
                        "holderIdentity": .string, "leaseDurationSeconds": .int, "acquireTime": .string,
                        "renewTime": .string,
                        "leaseTransitions": .int, "strategy": .string, "preferredHolder": .string,
                    ])
            ]
        default: return [:]
        }
    }

    static func top(_ r: ResourceType) -> Schema {
        var f = fields(r.kind)
        f["apiVersion"] = .string; f["kind"] = .string; f["metadata"] = objectMeta
        return .object(definitionName(r), f)
    }
    static func definitionName(_ r: ResourceType) -> String {
        switch r.group {
        case "": return "io.k8s.api.core.v1.\(r.kind)"
        case "apps": return "io.k8s.api.apps.v1.\(r.kind)"
        case "discovery.k8s.io": return "io.k8s.api.discovery.v1.\(r.kind)"
        case "coordination.k8s.io": return "io.k8s.api.coordination.v1.\(r.kind)"
        default: return "io.berth.\(r.kind)"
        }
    }

    /// Type errors always fail (400, like Go's decoder); unknown fields only when strict.
    static func check(_ obj: JSON, _ r: ResourceType, strict: Bool) throws {
        var unknown: [String] = []
        try walk(obj, top(r), path: "", strict: strict, unknown: &unknown, goType: r.kind)
        if !unknown.isEmpty {
            throw APIError.badRequest(
                "strict decoding error: " + unknown.map { "unknown field \"\($0)\"" }.joined(separator: ", "))
        }
    }

    private static func walk(
        _ v: JSON, _ s: Schema, path: String, strict: Bool, unknown: inout [String], goType: String
    ) throws {
        if v == .null { return }
        func typeError(_ want: String) -> APIError {
            APIError.badRequest(
                "json: cannot unmarshal \(v.typeName) into Go struct field \(goType).\(path.isEmpty ? "" : path) of type \(want)"
            )
        }
        switch s {
        case .any, .freeform:
            if case .freeform = s, v.object == nil { throw typeError("object") }
        case .string: if v.string == nil { throw typeError("string") }
        case .int: if v.int == nil { throw typeError("int64") }
        case .number: if v.double == nil { throw typeError("float64") }
        case .bool: if v.bool == nil { throw typeError("bool") }
        case .intOrString: if v.int == nil && v.string == nil { throw typeError("intstr.IntOrString") }
        case .map(let inner):
            guard let o = v.object else { throw typeError("map[string]string") }
            for (k, x) in o {
                try walk(x, inner, path: path + "." + k, strict: strict, unknown: &unknown, goType: goType)
            }
        case .array(let inner, _, _):
            guard let a = v.array else { throw typeError("[]") }
            for (i, x) in a.enumerated() {
                try walk(x, inner, path: path + "[\(i)]", strict: strict, unknown: &unknown, goType: goType)
            }
        case .object(_, let props):
            guard let o = v.object else { throw typeError("object") }
            for (k, x) in o {
                let p = path.isEmpty ? k : path + "." + k
                guard let ps = props[k] else {
                    if strict { unknown.append(p) }
                    continue
                }
                try walk(x, ps, path: p, strict: strict, unknown: &unknown, goType: goType)
            }
        case .ref(let n): try walk(v, def(n), path: path, strict: strict, unknown: &unknown, goType: goType)
        }
    }
}
