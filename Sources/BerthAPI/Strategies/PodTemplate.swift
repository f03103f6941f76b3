/// The rules of a pod spec, shared by the Pod strategy and the workloads whose template holds one
/// (Deployment, ReplicaSet, DaemonSet): upstream's pod-spec defaulting (SetDefaults_PodSpec,
/// SetDefaults_Container) and the checks of ValidatePodSpec that users actually trip over.
enum PodTemplate {
    static func applyDefaults(_ spec: inout JSON) {
        if spec["restartPolicy"].isNull { spec["restartPolicy"] = "Always" }
        if spec["dnsPolicy"].isNull { spec["dnsPolicy"] = "ClusterFirst" }
        if spec["terminationGracePeriodSeconds"].isNull { spec["terminationGracePeriodSeconds"] = 30 }
        if spec["schedulerName"].isNull { spec["schedulerName"] = "default-scheduler" }
        if spec["securityContext"].isNull { spec["securityContext"] = [:] }
        if spec["enableServiceLinks"].isNull { spec["enableServiceLinks"] = true }
        let hostNetwork = spec["hostNetwork"].bool == true
        if let volumes = spec["volumes"].array { spec["volumes"] = .array(volumes.map(defaultVolume)) }
        for field in ["containers", "initContainers"] {
            guard let list = spec[field].array else { continue }
            spec[field] = .array(
                list.map { c in
                    var c = c
                    if c["terminationMessagePath"].isNull { c["terminationMessagePath"] = "/dev/termination-log" }
                    if c["terminationMessagePolicy"].isNull { c["terminationMessagePolicy"] = "File" }
                    if c["imagePullPolicy"].isNull {
                        let image = c["image"].string ?? ""
                        let tagged = image.split(separator: "/").last.map { $0.contains(":") } ?? false
                        c["imagePullPolicy"] =
                            (image.hasSuffix(":latest") || (!tagged && !image.contains("@")))
                            ? "Always" : "IfNotPresent"
                    }
                    if c["resources"].isNull { c["resources"] = [:] }
                    if let ports = c["ports"].array {
                        c["ports"] = .array(
                            ports.map { p in
                                var p = p
                                if p["protocol"].isNull { p["protocol"] = "TCP" }
                                if hostNetwork, p["hostPort"].isNull { p["hostPort"] = p["containerPort"] }
                                return p
                            })
                    }
                    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] where c[probe].object != nil {
                        defaultProbe(&c[probe])
                    }
                    for hook in ["postStart", "preStop"] where c["lifecycle"][hook]["httpGet"].object != nil {
                        defaultHTTPGet(&c["lifecycle"][hook]["httpGet"])
                    }
                    if let env = c["env"].array {
                        c["env"] = .array(
                            env.map { e in
                                var e = e
                                if e["valueFrom"]["fieldRef"].object != nil {
                                    defaultFieldRef(&e["valueFrom"]["fieldRef"])
                                }
                                return e
                            })
                    }
                    return c
                })
        }
    }

    /// SetDefaults_Probe: what a probe that names only its action does.
    static func defaultProbe(_ probe: inout JSON) {
        if probe["timeoutSeconds"].isNull { probe["timeoutSeconds"] = 1 }
        if probe["periodSeconds"].isNull { probe["periodSeconds"] = 10 }
        if probe["successThreshold"].isNull { probe["successThreshold"] = 1 }
        if probe["failureThreshold"].isNull { probe["failureThreshold"] = 3 }
        if probe["httpGet"].object != nil { defaultHTTPGet(&probe["httpGet"]) }
    }

    /// SetDefaults_HTTPGetAction.
    static func defaultHTTPGet(_ action: inout JSON) {
        if action["path"].isNull { action["path"] = "/" }
        if action["scheme"].isNull { action["scheme"] = "HTTP" }
    }

    /// SetDefaults_ObjectFieldSelector: a field path is of the pod's v1 form unless said otherwise.
    static func defaultFieldRef(_ ref: inout JSON) {
        if ref["apiVersion"].isNull { ref["apiVersion"] = "v1" }
    }

    /// SetDefaults_Volume and the volume sources' defaults: no source is an emptyDir; files projected
    /// into the pod are 0644 (420); a projected token lives an hour; a hostPath's type is "" (no check).
    static func defaultVolume(_ volume: JSON) -> JSON {
        var v = volume
        let sources = Set((v.object ?? [:]).keys).subtracting(["name"])
        if sources.isEmpty { v["emptyDir"] = [:] }
        for source in ["secret", "configMap", "downwardAPI", "projected"] where v[source].object != nil {
            if v[source]["defaultMode"].isNull { v[source]["defaultMode"] = 420 }
        }
        if v["hostPath"].object != nil, v["hostPath"]["type"].isNull { v["hostPath"]["type"] = "" }
        func defaultItems(_ items: JSON) -> JSON {
            .array(
                (items.array ?? []).map { item in
                    var item = item
                    if item["fieldRef"].object != nil { defaultFieldRef(&item["fieldRef"]) }
                    return item
                })
        }
        if v["downwardAPI"]["items"].array != nil {
            v["downwardAPI"]["items"] = defaultItems(v["downwardAPI"]["items"])
        }
        if let projections = v["projected"]["sources"].array {
            v["projected"]["sources"] = .array(
                projections.map { p in
                    var p = p
                    if p["serviceAccountToken"].object != nil, p["serviceAccountToken"]["expirationSeconds"].isNull {
                        p["serviceAccountToken"]["expirationSeconds"] = 3600
                    }
                    if p["downwardAPI"]["items"].array != nil {
                        p["downwardAPI"]["items"] = defaultItems(p["downwardAPI"]["items"])
                    }
                    return p
                })
        }
        return v
    }

    static func validate(_ spec: JSON, path: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let containers = spec["containers"].array ?? []
        if containers.isEmpty { errs.append(.init("\(path).containers", "FieldValueRequired", "Required value")) }
        var names = Set<String>()
        for (kind, list) in [("containers", containers), ("initContainers", spec["initContainers"].array ?? [])] {
            for (i, c) in list.enumerated() {
                let p = "\(path).\(kind)[\(i)]"
                let n = c["name"].string ?? ""
                if n.isEmpty {
                    errs.append(.init("\(p).name", "FieldValueRequired", "Required value"))
                } else if !Validation.isDNS1123Label(n) {
                    errs.append(
                        .init("\(p).name", "FieldValueInvalid", "Invalid value: \"\(n)\": \(Validation.labelNameText)"))
                } else if !names.insert(n).inserted {
                    errs.append(.init("\(p).name", "FieldValueDuplicate", "Duplicate value: \"\(n)\""))
                }
                if (c["image"].string ?? "").isEmpty {
                    errs.append(.init("\(p).image", "FieldValueRequired", "Required value"))
                }
                for (j, port) in (c["ports"].array ?? []).enumerated() {
                    let cp = port["containerPort"].int ?? 0
                    if cp < 1 || cp > 65535 {
                        errs.append(
                            .init(
                                "\(p).ports[\(j)].containerPort", "FieldValueInvalid",
                                "Invalid value: \(cp): must be between 1 and 65535, inclusive"))
                    }
                    if let proto = port["protocol"].string, !["TCP", "UDP", "SCTP"].contains(proto) {
                        errs.append(
                            .init(
                                "\(p).ports[\(j)].protocol", "FieldValueNotSupported",
                                "Unsupported value: \"\(proto)\": supported values: \"SCTP\", \"TCP\", \"UDP\""))
                    }
                }
            }
        }
        if let rp = spec["restartPolicy"].string, !["Always", "OnFailure", "Never"].contains(rp) {
            errs.append(
                .init(
                    "\(path).restartPolicy", "FieldValueNotSupported",
                    "Unsupported value: \"\(rp)\": supported values: \"Always\", \"OnFailure\", \"Never\""))
        }
        return errs
    }
}
