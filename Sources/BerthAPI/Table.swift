import Foundation

/// Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): the columns kubectl shows.
enum Tables {
    struct Column { var name: String; var type = "string"; var format = ""; var priority = 0; var description = "" }

    static func columns(_ r: ResourceType) -> [Column] {
        let name = Column(name: "Name", format: "name", description: "Name must be unique within a namespace.")
        let age = Column(name: "Age", description: "CreationTimestamp is a timestamp representing the server time when this object was created.")
        switch r.kind {
        case "Pod":
            return [name, .init(name: "Ready"), .init(name: "Status"), .init(name: "Restarts", type: "string"), age,
                    .init(name: "IP", priority: 1), .init(name: "Node", priority: 1), .init(name: "Nominated Node", priority: 1),
                    .init(name: "Readiness Gates", priority: 1)]
        case "Deployment":
            return [name, .init(name: "Ready"), .init(name: "Up-to-date", type: "integer"), .init(name: "Available", type: "integer"), age,
                    .init(name: "Containers", priority: 1), .init(name: "Images", priority: 1), .init(name: "Selector", priority: 1)]
        case "ReplicaSet":
            return [name, .init(name: "Desired", type: "integer"), .init(name: "Current", type: "integer"), .init(name: "Ready", type: "integer"), age,
                    .init(name: "Containers", priority: 1), .init(name: "Images", priority: 1), .init(name: "Selector", priority: 1)]
        case "DaemonSet":
            return [name, .init(name: "Desired", type: "integer"), .init(name: "Current", type: "integer"), .init(name: "Ready", type: "integer"),
                    .init(name: "Up-to-date", type: "integer"), .init(name: "Available", type: "integer"), .init(name: "Node Selector"), age,
                    .init(name: "Containers", priority: 1), .init(name: "Images", priority: 1), .init(name: "Selector", priority: 1)]
        case "Service":
            return [name, .init(name: "Type"), .init(name: "Cluster-IP"), .init(name: "External-IP"), .init(name: "Port(s)"), age,
                    .init(name: "Selector", priority: 1)]
        case "Node":
            return [name, .init(name: "Status"), .init(name: "Roles"), age, .init(name: "Version"),
                    .init(name: "Internal-IP", priority: 1), .init(name: "External-IP", priority: 1), .init(name: "OS-Image", priority: 1),
                    .init(name: "Kernel-Version", priority: 1), .init(name: "Container-Runtime", priority: 1)]
        case "Namespace": return [name, .init(name: "Status"), age]
        case "ConfigMap": return [name, .init(name: "Data", type: "integer"), age]
        case "Secret": return [name, .init(name: "Type"), .init(name: "Data", type: "integer"), age]
        case "Endpoints": return [name, .init(name: "Endpoints"), age]
        case "ServiceAccount": return [name, .init(name: "Secrets", type: "integer"), age]
        case "Lease": return [name, .init(name: "Holder"), age]
        case "EndpointSlice": return [name, .init(name: "AddressType"), .init(name: "Ports"), .init(name: "Endpoints"), age]
        case "Event":
            return [.init(name: "Last Seen"), .init(name: "Type"), .init(name: "Reason"), .init(name: "Object"), .init(name: "Message"),
                    .init(name: "Source", priority: 1), .init(name: "First Seen", priority: 1), .init(name: "Count", type: "integer", priority: 1),
                    name]
        default: return [name, age]
        }
    }

    static func age(_ obj: JSON, now: Date = Date()) -> String {
        guard let ts = obj["metadata"]["creationTimestamp"].string, let d = APITime.parse(ts) else { return "<unknown>" }
        return duration(now.timeIntervalSince(d))
    }
    /// kubectl's HumanDuration.
    static func duration(_ secs: Double) -> String {
        let s = Int(max(0, secs))
        if s < 120 { return "\(s)s" }
        let m = s / 60
        if m < 10 { return s % 60 == 0 ? "\(m)m" : "\(m)m\(s % 60)s" }
        if m < 180 { return "\(m)m" }
        let h = s / 3600
        if h < 8 { return (m % 60) == 0 ? "\(h)h" : "\(h)h\(m % 60)m" }
        if h < 48 { return "\(h)h" }
        let d = h / 24
        if d < 8 { return h % 24 == 0 ? "\(d)d" : "\(d)d\(h % 24)h" }
        if d < 365 * 2 { return "\(d)d" }
        return "\(d / 365)y"
    }

    static func int(_ v: JSON) -> JSON { .int(v.int ?? 0) }
    static func containers(_ spec: JSON) -> (String, String) {
        let cs = spec["containers"].array ?? []
        return (cs.compactMap { $0["name"].string }.joined(separator: ","), cs.compactMap { $0["image"].string }.joined(separator: ","))
    }

    static func cells(_ obj: JSON, _ r: ResourceType) -> [JSON] {
        let name = JSON.string(obj["metadata"]["name"].string ?? "")
        let age = JSON.string(age(obj))
        let spec = obj["spec"], status = obj["status"]
        switch r.kind {
        case "Pod":
            let cs = spec["containers"].array ?? []
            let statuses = status["containerStatuses"].array ?? []
            let ready = statuses.filter { $0["ready"].bool == true }.count
            let restarts = statuses.reduce(Int64(0)) { $0 + ($1["restartCount"].int ?? 0) }
            var phase = status["reason"].string ?? status["phase"].string ?? "Pending"
            for s in statuses { if let w = s["state"]["waiting"]["reason"].string { phase = w } }
            if !obj["metadata"]["deletionTimestamp"].isNull { phase = "Terminating" }
            return [name, .string("\(ready)/\(cs.count)"), .string(phase), .string(String(restarts)), age,
                    .string(status["podIP"].string ?? "<none>"), .string(spec["nodeName"].string ?? "<none>"),
                    .string(status["nominatedNodeName"].string ?? "<none>"), .string("<none>")]
        case "Deployment":
            let (c, i) = containers(spec["template"]["spec"])
            return [name, .string("\(status["readyReplicas"].int ?? 0)/\(spec["replicas"].int ?? 0)"), int(status["updatedReplicas"]),
                    int(status["availableReplicas"]), age, .string(c), .string(i), .string(LabelSelector(object: spec["selector"]).text)]
        case "ReplicaSet":
            let (c, i) = containers(spec["template"]["spec"])
            return [name, int(spec["replicas"]), int(status["replicas"]), int(status["readyReplicas"]), age, .string(c), .string(i),
                    .string(LabelSelector(object: spec["selector"]).text)]
        case "DaemonSet":
            let (c, i) = containers(spec["template"]["spec"])
            let ns = spec["template"]["spec"]["nodeSelector"].stringMap.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            return [name, int(status["desiredNumberScheduled"]), int(status["currentNumberScheduled"]), int(status["numberReady"]),
                    int(status["updatedNumberScheduled"]), int(status["numberAvailable"]), .string(ns.isEmpty ? "<none>" : ns), age,
                    .string(c), .string(i), .string(LabelSelector(object: spec["selector"]).text)]
        case "Service":
            let ports = (spec["ports"].array ?? []).map { p -> String in
                let np = p["nodePort"].int.map { ":\($0)" } ?? ""
                return "\(p["port"].int ?? 0)\(np)/\(p["protocol"].string ?? "TCP")"
            }.joined(separator: ",")
            let ext = (status["loadBalancer"]["ingress"].array ?? []).compactMap { $0["ip"].string } + (spec["externalIPs"].array ?? []).compactMap(\.string)
            let type = spec["type"].string ?? "ClusterIP"
            let sel = spec["selector"].stringMap.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            return [name, .string(type), .string(spec["clusterIP"].string ?? "<none>"),
                    .string(ext.isEmpty ? (type == "LoadBalancer" ? "<pending>" : "<none>") : ext.joined(separator: ",")),
                    .string(ports.isEmpty ? "<none>" : ports), age, .string(sel.isEmpty ? "<none>" : sel)]
        case "Node":
            let ready = (status["conditions"].array ?? []).first { $0["type"].string == "Ready" }
            var st = ready?["status"].string == "True" ? "Ready" : (ready == nil ? "Unknown" : "NotReady")
            if spec["unschedulable"].bool == true { st += ",SchedulingDisabled" }
            let roles = obj["metadata"]["labels"].stringMap.keys.filter { $0.hasPrefix("node-role.kubernetes.io/") }
                .map { String($0.dropFirst("node-role.kubernetes.io/".count)) }.sorted()
            let addr = { (t: String) in (status["addresses"].array ?? []).first { $0["type"].string == t }?["address"].string ?? "<none>" }
            let info = status["nodeInfo"]
            return [name, .string(st), .string(roles.isEmpty ? "<none>" : roles.joined(separator: ",")), age,
                    .string(info["kubeletVersion"].string ?? ""), .string(addr("InternalIP")), .string(addr("ExternalIP")),
                    .string(info["osImage"].string ?? "<unknown>"), .string(info["kernelVersion"].string ?? "<unknown>"),
                    .string(info["containerRuntimeVersion"].string ?? "<unknown>")]
        case "Namespace": return [name, .string(status["phase"].string ?? "Active"), age]
        case "ConfigMap": return [name, .int(Int64((obj["data"].object?.count ?? 0) + (obj["binaryData"].object?.count ?? 0))), age]
        case "Secret": return [name, .string(obj["type"].string ?? "Opaque"), .int(Int64(obj["data"].object?.count ?? 0)), age]
        case "ServiceAccount": return [name, .int(Int64(obj["secrets"].array?.count ?? 0)), age]
        case "Lease": return [name, .string(spec["holderIdentity"].string ?? ""), age]
        case "Endpoints":
            var eps: [String] = []
            for s in obj["subsets"].array ?? [] {
                for a in s["addresses"].array ?? [] {
                    for p in s["ports"].array ?? [[:]] { eps.append("\(a["ip"].string ?? ""):\(p["port"].int ?? 0)") }
                }
            }
            let shown = eps.prefix(3).joined(separator: ",") + (eps.count > 3 ? " + \(eps.count - 3) more..." : "")
            return [name, .string(eps.isEmpty ? "<none>" : shown), age]
        case "EndpointSlice":
            let ports = (obj["ports"].array ?? []).compactMap { $0["port"].int.map(String.init) }.joined(separator: ",")
            let addrs = (obj["endpoints"].array ?? []).flatMap { ($0["addresses"].array ?? []).compactMap(\.string) }
            return [name, .string(obj["addressType"].string ?? ""), .string(ports.isEmpty ? "<unset>" : ports),
                    .string(addrs.isEmpty ? "<unset>" : addrs.prefix(3).joined(separator: ",")), age]
        case "Event":
            let io = obj["involvedObject"]
            let last = obj["lastTimestamp"].string ?? obj["eventTime"].string ?? obj["metadata"]["creationTimestamp"].string
            let since = last.flatMap { APITime.parse($0) }.map { duration(Date().timeIntervalSince($0)) } ?? "<unknown>"
            return [.string(since), .string(obj["type"].string ?? ""), .string(obj["reason"].string ?? ""),
                    .string("\((io["kind"].string ?? "").lowercased())/\(io["name"].string ?? "")"), .string(obj["message"].string ?? ""),
                    .string(obj["source"]["component"].string ?? ""), .string(since), int(obj["count"]), name]
        default: return [name, age]
        }
    }

    static func definitions(_ r: ResourceType) -> JSON {
        .array(columns(r).map {
            ["name": .string($0.name), "type": .string($0.type), "format": .string($0.format),
             "description": .string($0.description), "priority": .int(Int64($0.priority))]
        })
    }

    static func table(_ objs: [JSON], _ r: ResourceType, resourceVersion: String, continueToken: String?, includeObject: String) -> JSON {
        var meta: JSON = ["resourceVersion": .string(resourceVersion)]
        if let continueToken { meta["continue"] = .string(continueToken) }
        return ["kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "columnDefinitions": definitions(r), "rows": .array(objs.map { row($0, r, includeObject: includeObject) })]
    }

    static func row(_ obj: JSON, _ r: ResourceType, includeObject: String) -> JSON {
        var row: JSON = ["cells": .array(cells(obj, r))]
        switch includeObject {
        case "None": break
        case "Object": row["object"] = obj
        default:
            row["object"] = ["kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]]
        }
        return row
    }
}
