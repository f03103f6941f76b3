import Foundation

/// Upstream's name and label rules (k8s.io/apimachinery/pkg/util/validation) and per-kind checks for
/// what users actually get wrong.
public enum Validation {
    static func isDNS1123Label(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 63 else { return false }
        let u = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) }
        return alnum(u.first!) && alnum(u.last!) && u.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") }
    }
    static func isDNS1123Subdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNS1123Label(String($0)) }
    }
    static func isLabelValue(_ s: String) -> Bool {
        if s.isEmpty { return true }
        guard s.count <= 63 else { return false }
        let u = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) }
        return alnum(u.first!) && alnum(u.last!) && u.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }
    static func isQualifiedName(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 2 { return isDNS1123Subdomain(String(parts[0])) && isLabelValue(String(parts[1])) && !parts[1].isEmpty }
        return parts.count == 1 && !s.isEmpty && isLabelValue(s)
    }

    static let nameRegexText = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    static let labelNameText = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"

    /// Kinds whose names must be DNS labels rather than subdomains.
    static let labelNamedKinds: Set<String> = ["Namespace", "Service"]

    /// Validates an object about to be stored; returns field errors.
    public static func validate(_ obj: JSON, _ r: ResourceType) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let name = obj["metadata"]["name"].string ?? ""
        if name.isEmpty {
            errs.append(.init("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
        } else if labelNamedKinds.contains(r.kind) ? !isDNS1123Label(name) : !isDNS1123Subdomain(name) {
            errs.append(.init("metadata.name", "FieldValueInvalid",
                              "Invalid value: \"\(name)\": \(labelNamedKinds.contains(r.kind) ? labelNameText : nameRegexText)"))
        }
        for field in ["labels", "annotations"] {
            let v = obj["metadata"][field]
            if v.isNull { continue }
            guard let m = v.object else {
                errs.append(.init("metadata.\(field)", "FieldValueInvalid", "Invalid value: must be a map of strings")); continue
            }
            for (k, val) in m {
                if !isQualifiedName(k) {
                    errs.append(.init("metadata.\(field)", "FieldValueInvalid", "Invalid value: \"\(k)\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
                }
                guard let s = val.string else {
                    errs.append(.init("metadata.\(field).\(k)", "FieldValueInvalid", "Invalid value: must be a string")); continue
                }
                if field == "labels" && !isLabelValue(s) {
                    errs.append(.init("metadata.labels", "FieldValueInvalid", "Invalid value: \"\(s)\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))
                }
            }
        }
        switch r.kind {
        case "Pod": errs += podSpec(obj["spec"], path: "spec")
        case "Deployment", "ReplicaSet", "DaemonSet":
            let spec = obj["spec"]
            if let rep = spec["replicas"].int, rep < 0 {
                errs.append(.init("spec.replicas", "FieldValueInvalid", "Invalid value: \(rep): must be greater than or equal to 0"))
            }
            let sel = spec["selector"]
            if sel.isNull || (sel["matchLabels"].stringMap.isEmpty && (sel["matchExpressions"].array ?? []).isEmpty) {
                errs.append(.init("spec.selector", "FieldValueRequired", "Required value"))
            } else if !LabelSelector(object: sel).matches(spec["template"]["metadata"]["labels"].stringMap) {
                errs.append(.init("spec.template.metadata.labels", "FieldValueInvalid",
                                  "Invalid value: \(spec["template"]["metadata"]["labels"].text): `selector` does not match template `labels`"))
            }
            errs += podSpec(spec["template"]["spec"], path: "spec.template.spec")
        case "Service":
            let spec = obj["spec"]
            let type = spec["type"].string ?? "ClusterIP"
            if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(type) {
                errs.append(.init("spec.type", "FieldValueNotSupported", "Unsupported value: \"\(type)\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""))
            }
            let ports = spec["ports"].array ?? []
            if ports.isEmpty && type != "ExternalName" && spec["clusterIP"].string != "None" {
                errs.append(.init("spec.ports", "FieldValueRequired", "Required value"))
            }
            var seen = Set<String>()
            for (i, p) in ports.enumerated() {
                let port = p["port"].int ?? 0
                if port < 1 || port > 65535 {
                    errs.append(.init("spec.ports[\(i)].port", "FieldValueInvalid", "Invalid value: \(port): must be between 1 and 65535, inclusive"))
                }
                if ports.count > 1 && (p["name"].string ?? "").isEmpty {
                    errs.append(.init("spec.ports[\(i)].name", "FieldValueRequired", "Required value"))
                }
                let key = "\(port)/\(p["protocol"].string ?? "TCP")"
                if !seen.insert(key).inserted {
                    errs.append(.init("spec.ports[\(i)]", "FieldValueDuplicate", "Duplicate value: \(key)"))
                }
            }
        case "ConfigMap", "Secret":
            if r.kind == "Secret", obj["type"].string == "kubernetes.io/service-account-token",
               (obj["metadata"]["annotations"]["kubernetes.io/service-account.name"].string ?? "").isEmpty {
                errs.append(.init("metadata.annotations[kubernetes.io/service-account.name]", "FieldValueRequired", "Required value"))
            }
            for field in ["data", "binaryData", "stringData"] {
                for k in (obj[field].object ?? [:]).keys where !isConfigKey(k) {
                    errs.append(.init("\(field)[\(k)]", "FieldValueInvalid", "Invalid value: \"\(k)\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"))
                }
            }
        default: break
        }
        return errs
    }

    static func isConfigKey(_ k: String) -> Bool {
        !k.isEmpty && k.count <= 253 && k != "." && k != ".." &&
            k.utf8.allSatisfy { c in (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e }
    }

    static func podSpec(_ spec: JSON, path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let containers = spec["containers"].array ?? []
        if containers.isEmpty { errs.append(.init("\(path).containers", "FieldValueRequired", "Required value")) }
        var names = Set<String>()
        for (kind, list) in [("containers", containers), ("initContainers", spec["initContainers"].array ?? [])] {
            for (i, c) in list.enumerated() {
                let p = "\(path).\(kind)[\(i)]"
                let n = c["name"].string ?? ""
                if n.isEmpty { errs.append(.init("\(p).name", "FieldValueRequired", "Required value")) }
                else if !isDNS1123Label(n) { errs.append(.init("\(p).name", "FieldValueInvalid", "Invalid value: \"\(n)\": \(labelNameText)")) }
                else if !names.insert(n).inserted { errs.append(.init("\(p).name", "FieldValueDuplicate", "Duplicate value: \"\(n)\"")) }
                if (c["image"].string ?? "").isEmpty { errs.append(.init("\(p).image", "FieldValueRequired", "Required value")) }
                for (j, port) in (c["ports"].array ?? []).enumerated() {
                    let cp = port["containerPort"].int ?? 0
                    if cp < 1 || cp > 65535 {
                        errs.append(.init("\(p).ports[\(j)].containerPort", "FieldValueInvalid", "Invalid value: \(cp): must be between 1 and 65535, inclusive"))
                    }
                    if let proto = port["protocol"].string, !["TCP", "UDP", "SCTP"].contains(proto) {
                        errs.append(.init("\(p).ports[\(j)].protocol", "FieldValueNotSupported", "Unsupported value: \"\(proto)\": supported values: \"SCTP\", \"TCP\", \"UDP\""))
                    }
                }
            }
        }
        if let rp = spec["restartPolicy"].string, !["Always", "OnFailure", "Never"].contains(rp) {
            errs.append(.init("\(path).restartPolicy", "FieldValueNotSupported", "Unsupported value: \"\(rp)\": supported values: \"Always\", \"OnFailure\", \"Never\""))
        }
        return errs
    }
}

/// Upstream defaulting for the fields users see in `kubectl get -o yaml`.
enum Defaults {
    /// `creating`: defaults upstream sets only on create (a Namespace's "kubernetes" finalizer, which
    /// the namespace controller later removes through namespaces/finalize).
    static func apply(_ obj: inout JSON, _ r: ResourceType, creating: Bool = false) {
        switch r.kind {
        case "Pod":
            var spec = obj["spec"]
            podSpec(&spec)
            obj["spec"] = spec
            if obj["status"]["phase"].isNull { obj["status"]["phase"] = "Pending" }
            if obj["status"]["qosClass"].isNull { obj["status"]["qosClass"] = "BestEffort" }
        case "Deployment", "ReplicaSet", "DaemonSet":
            if r.kind != "DaemonSet" && obj["spec"]["replicas"].isNull { obj["spec"]["replicas"] = 1 }
            if r.kind == "ReplicaSet" {
                // ReplicaSetSpec has no revisionHistoryLimit: earlier Berth defaulted one, and a strict
                // `kubectl replace|apply|edit` of the set as read back then failed. Pruned, as upstream
                // prunes unknown fields.
                obj["spec"]["revisionHistoryLimit"] = .null
            } else if obj["spec"]["revisionHistoryLimit"].isNull { obj["spec"]["revisionHistoryLimit"] = 10 }
            if r.kind == "Deployment" {
                if obj["spec"]["progressDeadlineSeconds"].isNull { obj["spec"]["progressDeadlineSeconds"] = 600 }
                if obj["spec"]["strategy"]["type"].isNull { obj["spec"]["strategy"]["type"] = "RollingUpdate" }
                if obj["spec"]["strategy"]["type"].string == "RollingUpdate" {
                    if obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"].isNull { obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = "25%" }
                    if obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"].isNull { obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = "25%" }
                }
            }
            if r.kind == "DaemonSet" && obj["spec"]["updateStrategy"]["type"].isNull {
                obj["spec"]["updateStrategy"] = ["type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": 1, "maxSurge": 0]]
            }
            var spec = obj["spec"]["template"]["spec"]
            podSpec(&spec)
            obj["spec"]["template"]["spec"] = spec
            if r.kind != "ReplicaSet" || true {
                if obj["spec"]["template"]["metadata"]["creationTimestamp"].isNull { obj["spec"]["template"]["metadata"]["creationTimestamp"] = .null }
            }
        case "Service":
            if obj["spec"]["type"].isNull { obj["spec"]["type"] = "ClusterIP" }
            if obj["spec"]["sessionAffinity"].isNull { obj["spec"]["sessionAffinity"] = "None" }
            if obj["spec"]["internalTrafficPolicy"].isNull { obj["spec"]["internalTrafficPolicy"] = "Cluster" }
            if obj["spec"]["ipFamilies"].isNull { obj["spec"]["ipFamilies"] = ["IPv4"] }
            if obj["spec"]["ipFamilyPolicy"].isNull { obj["spec"]["ipFamilyPolicy"] = "SingleStack" }
            let ports = (obj["spec"]["ports"].array ?? []).map { p -> JSON in
                var p = p
                if p["protocol"].isNull { p["protocol"] = "TCP" }
                if p["targetPort"].isNull { p["targetPort"] = p["port"] }
                return p
            }
            if !ports.isEmpty { obj["spec"]["ports"] = .array(ports) }
            if obj["status"].isNull { obj["status"] = ["loadBalancer": [:]] }
        case "Namespace":
            if obj["status"]["phase"].isNull { obj["status"]["phase"] = "Active" }
            if let name = obj["metadata"]["name"].string { obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = .string(name) }
            if creating {
                var finalizers = obj["spec"]["finalizers"].array ?? []
                if !finalizers.contains("kubernetes") { finalizers.append("kubernetes") }
                obj["spec"]["finalizers"] = .array(finalizers)
            }
        case "Secret":
            if obj["type"].isNull { obj["type"] = "Opaque" }
            // stringData is write-only: merged into data (base64).
            if let sd = obj["stringData"].object {
                for (k, v) in sd { obj["data"][k] = .string(Data((v.string ?? "").utf8).base64EncodedString()) }
                obj["stringData"] = .null
            }
        case "Node":
            if obj["status"]["phase"].isNull && false { obj["status"]["phase"] = "Running" }
        default: break
        }
    }

    static func podSpec(_ spec: inout JSON) {
        if spec["restartPolicy"].isNull { spec["restartPolicy"] = "Always" }
        if spec["dnsPolicy"].isNull { spec["dnsPolicy"] = "ClusterFirst" }
        if spec["terminationGracePeriodSeconds"].isNull { spec["terminationGracePeriodSeconds"] = 30 }
        if spec["schedulerName"].isNull { spec["schedulerName"] = "default-scheduler" }
        if spec["securityContext"].isNull { spec["securityContext"] = [:] }
        for field in ["containers", "initContainers"] {
            guard let list = spec[field].array else { continue }
            spec[field] = .array(list.map { c in
                var c = c
                if c["terminationMessagePath"].isNull { c["terminationMessagePath"] = "/dev/termination-log" }
                if c["terminationMessagePolicy"].isNull { c["terminationMessagePolicy"] = "File" }
                if c["imagePullPolicy"].isNull {
                    let image = c["image"].string ?? ""
                    let tagged = image.split(separator: "/").last.map { $0.contains(":") } ?? false
                    c["imagePullPolicy"] = (image.hasSuffix(":latest") || (!tagged && !image.contains("@"))) ? "Always" : "IfNotPresent"
                }
                if c["resources"].isNull { c["resources"] = [:] }
                if let ports = c["ports"].array {
                    c["ports"] = .array(ports.map { p in var p = p; if p["protocol"].isNull { p["protocol"] = "TCP" }; return p })
                }
                return c
            })
        }
    }
}
