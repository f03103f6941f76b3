/// core/v1 Service (upstream pkg/registry/core/service/strategy.go and storage.go's IP and node-port
/// allocation).
struct ServiceStrategy: ResourceStrategy {
    var namesAreLabels: Bool { true }

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["spec"]["type"].isNull { obj["spec"]["type"] = "ClusterIP" }
        if obj["spec"]["sessionAffinity"].isNull { obj["spec"]["sessionAffinity"] = "None" }
        // SetDefaults_Service: ClientIP affinity lasts three hours unless said otherwise; a load balancer
        // gets node ports unless told not to.
        if obj["spec"]["sessionAffinity"] == "ClientIP",
            obj["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].isNull
        {
            obj["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] = 10800
        }
        if obj["spec"]["type"] == "LoadBalancer", obj["spec"]["allocateLoadBalancerNodePorts"].isNull {
            obj["spec"]["allocateLoadBalancerNodePorts"] = true
        }
        // An ExternalName is a DNS alias: no traffic policy, no IP families (upstream leaves them unset).
        if obj["spec"]["type"] != "ExternalName" {
            if obj["spec"]["internalTrafficPolicy"].isNull { obj["spec"]["internalTrafficPolicy"] = "Cluster" }
            if obj["spec"]["ipFamilies"].isNull { obj["spec"]["ipFamilies"] = ["IPv4"] }
            if obj["spec"]["ipFamilyPolicy"].isNull { obj["spec"]["ipFamilyPolicy"] = "SingleStack" }
        }
        let ports = (obj["spec"]["ports"].array ?? []).map { p -> JSON in
            var p = p
            if p["protocol"].isNull { p["protocol"] = "TCP" }
            if p["targetPort"].isNull { p["targetPort"] = p["port"] }
            return p
        }
        if !ports.isEmpty { obj["spec"]["ports"] = .array(ports) }
        if obj["status"].isNull { obj["status"] = ["loadBalancer": [:]] }
    }

    /// clusterIP is immutable once allocated, and allocated nodePorts are kept when a client leaves them out.
    func prepareForUpdate(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) throws {
        splitSpecAndStatus(&obj, old: old, ctx)
        if (obj["spec"]["clusterIP"].string ?? "").isEmpty {
            obj["spec"]["clusterIP"] = old["spec"]["clusterIP"]; obj["spec"]["clusterIPs"] = old["spec"]["clusterIPs"]
        }
        if obj["spec"]["clusterIP"] != old["spec"]["clusterIP"] {
            throw APIError.invalid(
                ctx.resource, obj["metadata"]["name"].string ?? "",
                [
                    .init(
                        "spec.clusterIPs[0]", "FieldValueInvalid",
                        "Invalid value: \(obj["spec"]["clusterIP"].text): may not change once set")
                ])
        }
        if var ports = obj["spec"]["ports"].array {
            let before = old["spec"]["ports"].array ?? []
            for i in ports.indices where ports[i]["nodePort"].isNull {
                if let o = before.first(where: { $0["port"] == ports[i]["port"] }), !o["nodePort"].isNull {
                    ports[i]["nodePort"] = o["nodePort"]
                }
            }
            obj["spec"]["ports"] = .array(ports)
        }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let spec = obj["spec"]
        let type = spec["type"].string ?? "ClusterIP"
        if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(type) {
            errs.append(
                .init(
                    "spec.type", "FieldValueNotSupported",
                    "Unsupported value: \"\(type)\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
                ))
        }
        let ports = spec["ports"].array ?? []
        if ports.isEmpty && type != "ExternalName" && spec["clusterIP"].string != "None" {
            errs.append(.init("spec.ports", "FieldValueRequired", "Required value"))
        }
        var seen = Set<String>()
        for (i, p) in ports.enumerated() {
            let port = p["port"].int ?? 0
            if port < 1 || port > 65535 {
                errs.append(
                    .init(
                        "spec.ports[\(i)].port", "FieldValueInvalid",
                        "Invalid value: \(port): must be between 1 and 65535, inclusive"))
            }
            if ports.count > 1 && (p["name"].string ?? "").isEmpty {
                errs.append(.init("spec.ports[\(i)].name", "FieldValueRequired", "Required value"))
            }
            let key = "\(port)/\(p["protocol"].string ?? "TCP")"
            if !seen.insert(key).inserted {
                errs.append(.init("spec.ports[\(i)]", "FieldValueDuplicate", "Duplicate value: \(key)"))
            }
        }
        return errs
    }

    /// Creates are serialized so that two Services never get the same cluster IP or node port: the
    /// allocator reads what the stored Services hold, so allocation and write must not interleave.
    static let allocationLock = AsyncLock()

    func create(
        _ obj: JSON, key: String, _ ctx: StrategyContext, handler: Handler,
        write: (JSON) async throws -> JSON
    ) async throws -> JSON {
        await Self.allocationLock.lock()
        do {
            let out = try await write(try await allocate(obj, ctx, handler: handler))
            await Self.allocationLock.unlock()
            return out
        } catch {
            await Self.allocationLock.unlock()
            throw error
        }
    }

    /// A cluster IP (unless headless or ExternalName) and node ports (NodePort, LoadBalancer) that no stored
    /// Service holds; requested ones are checked against the ranges and the stored Services.
    func allocate(_ input: JSON, _ ctx: StrategyContext, handler: Handler) async throws -> JSON {
        var obj = input
        let r = ctx.resource, server = handler.server
        let type = obj["spec"]["type"].string ?? "ClusterIP"
        if type == "ExternalName" { return obj }
        let all = try await handler.store.list(prefix: r.keyPrefix, startAfter: nil, limit: 0, revision: nil)
        var usedIPs = Set<String>(), usedPorts = Set<Int64>()
        for kv in all.items {
            guard let s = try? JSON.parse(kv.value) else { continue }
            if let ip = s["spec"]["clusterIP"].string { usedIPs.insert(ip) }
            for p in s["spec"]["ports"].array ?? [] { if let np = p["nodePort"].int { usedPorts.insert(np) } }
        }
        let name = obj["metadata"]["name"].string ?? ""
        var wantIP = false
        if let ip = obj["spec"]["clusterIP"].string, !ip.isEmpty {
            if ip != "None" {
                guard await server.allocator.contains(ip) || ip == server.allocator.firstIP else {
                    throw APIError.invalid(
                        r, name,
                        [
                            .init(
                                "spec.clusterIPs", "FieldValueInvalid",
                                "Invalid value: [\"\(ip)\"]: failed to allocate IP \(ip): the provided IP (\(ip)) is not in the valid range. The range of valid IPs is \(server.config.serviceCIDR)"
                            )
                        ])
                }
                if usedIPs.contains(ip) {
                    throw APIError.invalid(
                        r, name,
                        [
                            .init(
                                "spec.clusterIPs", "FieldValueInvalid",
                                "Invalid value: [\"\(ip)\"]: failed to allocate IP \(ip): provided IP is already allocated"
                            )
                        ])
                }
            }
        } else {
            wantIP = true
        }
        var ports = obj["spec"]["ports"].array ?? []
        let needPorts = type == "NodePort" || type == "LoadBalancer"
        var missing = 0
        if needPorts {
            for (i, p) in ports.enumerated() {
                if let np = p["nodePort"].int {
                    if !server.config.nodePortRange.contains(Int(np)) {
                        throw APIError.invalid(
                            r, name,
                            [
                                .init(
                                    "spec.ports[\(i)].nodePort", "FieldValueInvalid",
                                    "Invalid value: \(np): provided port is not in the valid range. The range of valid ports is \(server.config.nodePortRange.lowerBound)-\(server.config.nodePortRange.upperBound)"
                                )
                            ])
                    }
                    if usedPorts.contains(np) {
                        throw APIError.invalid(
                            r, name,
                            [
                                .init(
                                    "spec.ports[\(i)].nodePort", "FieldValueInvalid",
                                    "Invalid value: \(np): provided port is already allocated")
                            ])
                    }
                } else {
                    missing += 1
                }
            }
        }
        let (ip, newPorts) = try await server.allocator.allocate(
            used: usedIPs, usedPorts: usedPorts, wantIP: wantIP, wantPorts: missing)
        if let ip { obj["spec"]["clusterIP"] = .string(ip) }
        if let ip = obj["spec"]["clusterIP"].string { obj["spec"]["clusterIPs"] = [.string(ip)] }
        var it = newPorts.makeIterator()
        if needPorts {
            for i in ports.indices where ports[i]["nodePort"].isNull { ports[i]["nodePort"] = .int(it.next()!) }
            obj["spec"]["ports"] = .array(ports)
            if obj["spec"]["externalTrafficPolicy"].isNull { obj["spec"]["externalTrafficPolicy"] = "Cluster" }
        }
        return obj
    }

    var fieldLabels: FieldLabelSet {
        .init(
            getters: [
                "spec.clusterIP": FieldLabels.string("spec.clusterIP"),
                "spec.type": FieldLabels.string("spec.type", default: "ClusterIP"),
            ], ownConversion: true)
    }

    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Type"), .init(name: "Cluster-IP"), .init(name: "External-IP"),
            .init(name: "Port(s)"),
            Tables.ageColumn, .init(name: "Selector", priority: 1),
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"], status = obj["status"]
        let ports = (spec["ports"].array ?? []).map { p -> String in
            let np = p["nodePort"].int.map { ":\($0)" } ?? ""
            return "\(p["port"].int ?? 0)\(np)/\(p["protocol"].string ?? "TCP")"
        }.joined(separator: ",")
        let ext =
            (status["loadBalancer"]["ingress"].array ?? []).compactMap { $0["ip"].string }
            + (spec["externalIPs"].array ?? []).compactMap(\.string)
        let type = spec["type"].string ?? "ClusterIP"
        let sel = spec["selector"].stringMap.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
            separator: ",")
        return [
            Tables.nameCell(obj), .string(type), .string(spec["clusterIP"].string ?? "<none>"),
            .string(ext.isEmpty ? (type == "LoadBalancer" ? "<pending>" : "<none>") : ext.joined(separator: ",")),
            .string(ports.isEmpty ? "<none>" : ports), Tables.ageCell(obj), .string(sel.isEmpty ? "<none>" : sel),
        ]
    }
}
