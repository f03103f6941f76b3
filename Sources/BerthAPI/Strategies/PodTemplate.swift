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
                                var p = p; if p["protocol"].isNull { p["protocol"] = "TCP" }; return p
                            })
                    }
                    return c
                })
        }
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
