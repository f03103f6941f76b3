/// networking.k8s.io/v1 Ingress and IngressClass (upstream pkg/apis/networking/validation and the
/// DefaultIngressClass admission plugin): HTTP routes to Services, served by whichever ingress
/// controller claims their class. Stored and checked here; the controller is the user's.
struct IngressStrategy: ResourceStrategy {
    static let pathTypes = ["Exact", "Prefix", "ImplementationSpecific"]
    static let defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"

    func prepareForCreate(_ obj: inout JSON, _ ctx: StrategyContext) { obj["status"] = ["loadBalancer": [:]] }

    /// DefaultIngressClass: an Ingress that names no class (neither the field nor the old annotation)
    /// gets the default IngressClass — the newest, if several claim to be.
    func admitCreate(_ obj: inout JSON, _ ctx: StrategyContext, handler: Handler) async throws {
        guard obj["spec"]["ingressClassName"].isNull,
            obj["metadata"]["annotations"]["kubernetes.io/ingress.class"].isNull
        else { return }
        let defaults = try await handler.storedObjects(Registry.ingressClasses, namespace: nil).map(\.object)
            .filter { $0["metadata"]["annotations"][Self.defaultClassAnnotation].string == "true" }
        guard
            let newest = defaults.max(by: {
                ($0["metadata"]["creationTimestamp"].string ?? "") < ($1["metadata"]["creationTimestamp"].string ?? "")
            })
        else { return }
        obj["spec"]["ingressClassName"] = newest["metadata"]["name"]
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        let rules = spec["rules"].array ?? []
        if rules.isEmpty && spec["defaultBackend"].isNull {
            errs.append(FieldChecks.invalid("spec", spec, "either `defaultBackend` or `rules` must be specified"))
        }
        if !spec["defaultBackend"].isNull {
            errs += Self.backendErrors(spec["defaultBackend"], "spec.defaultBackend")
        }
        if let className = spec["ingressClassName"].string {
            errs += FieldChecks.dns1123Subdomain(className, "spec.ingressClassName")
        }
        for (index, rule) in rules.enumerated() {
            let at = "spec.rules[\(index)]"
            if let host = rule["host"].string, !host.isEmpty { errs += Self.hostErrors(host, "\(at).host") }
            guard !rule["http"].isNull else { continue }
            let paths = rule["http"]["paths"].array ?? []
            if paths.isEmpty { errs.append(FieldChecks.required("\(at).http.paths")) }
            for (p, path) in paths.enumerated() {
                errs += Self.pathErrors(path, "\(at).http.paths[\(p)]")
            }
        }
        for (index, tls) in (spec["tls"].array ?? []).enumerated() {
            for (h, host) in (tls["hosts"].array ?? []).enumerated() {
                errs += Self.hostErrors(host.string ?? "", "spec.tls[\(index)].hosts[\(h)]")
            }
        }
        return errs
    }

    /// A rule's host: a DNS name, possibly with one leading wildcard label, never an IP address.
    static func hostErrors(_ host: String, _ path: String) -> [APIError.Cause] {
        if FieldChecks.ipAddress(host) != nil {
            return [FieldChecks.invalid(path, .string(host), "must be a DNS name, not an IP address")]
        }
        if host.contains("*") {
            guard host.hasPrefix("*."), Validation.isDNS1123Subdomain(String(host.dropFirst(2))) else {
                return [
                    FieldChecks.invalid(
                        path, .string(host),
                        "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                    )
                ]
            }
            return []
        }
        return FieldChecks.dns1123Subdomain(host, path)
    }

    /// A path: its type, an absolute path without `//`, `/./`, `/../` or encoded slashes for Exact and
    /// Prefix, and its backend.
    static func pathErrors(_ entry: JSON, _ at: String) -> [APIError.Cause] {
        var errs: [APIError.Cause] = []
        let path = entry["path"].string ?? ""
        if entry["pathType"].isNull {
            errs.append(FieldChecks.required("\(at).pathType", "pathType must be specified"))
        } else {
            errs += FieldChecks.supported(entry["pathType"], pathTypes, "\(at).pathType")
        }
        switch entry["pathType"].string {
        case "Exact", "Prefix":
            if !path.hasPrefix("/") {
                errs.append(FieldChecks.invalid("\(at).path", .string(path), "must be an absolute path"))
            }
            for sequence in ["//", "/./", "/../", "%2f", "%2F"] where path.contains(sequence) {
                errs.append(FieldChecks.invalid("\(at).path", .string(path), "must not contain '\(sequence)'"))
            }
            for suffix in ["/..", "/."] where path.hasSuffix(suffix) {
                errs.append(FieldChecks.invalid("\(at).path", .string(path), "cannot end with '\(suffix)'"))
            }
        default:
            if !path.isEmpty && !path.hasPrefix("/") {
                errs.append(FieldChecks.invalid("\(at).path", .string(path), "must be an absolute path"))
            }
        }
        return errs + backendErrors(entry["backend"], "\(at).backend")
    }

    /// A backend is a Service (by name, and port by name or number) or a typed resource, not both.
    static func backendErrors(_ backend: JSON, _ path: String) -> [APIError.Cause] {
        let service = backend["service"], resource = backend["resource"]
        switch (service.isNull, resource.isNull) {
        case (false, false):
            return [FieldChecks.invalid(path, backend, "cannot set both resource and service backends")]
        case (true, true): return [FieldChecks.invalid(path, backend, "resource or service backend is required")]
        case (true, false):
            var errs: [APIError.Cause] = []
            if (resource["kind"].string ?? "").isEmpty { errs.append(FieldChecks.required("\(path).resource.kind")) }
            if (resource["name"].string ?? "").isEmpty { errs.append(FieldChecks.required("\(path).resource.name")) }
            return errs
        case (false, true):
            var errs: [APIError.Cause] = []
            let name = service["name"].string ?? ""
            if name.isEmpty {
                errs.append(FieldChecks.required("\(path).service.name"))
            } else {
                errs += FieldChecks.dns1123Label(name, "\(path).service.name")
            }
            let port = service["port"]
            let portName = port["name"].string ?? "", portNumber = port["number"].int ?? 0
            if !portName.isEmpty && portNumber != 0 {
                errs.append(
                    FieldChecks.invalid("\(path).service.port", port, "cannot set both port name & port number"))
            } else if !portName.isEmpty {
                errs += FieldChecks.portName(portName, "\(path).service.port.name")
            } else if portNumber != 0 {
                errs += FieldChecks.portNumber(portNumber, "\(path).service.port.number")
            } else {
                errs.append(FieldChecks.required("\(path).service.port", "port name or number is required"))
            }
            return errs
        }
    }

    /// kubectl's columns: class, hosts, the load balancer's addresses and the ports served.
    var tableColumns: [Tables.Column] {
        [
            Tables.nameColumn, .init(name: "Class"), .init(name: "Hosts"), .init(name: "Address"),
            .init(name: "Ports"), Tables.ageColumn,
        ]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let spec = obj["spec"]
        let hosts = (spec["rules"].array ?? []).compactMap { $0["host"].string }.filter { !$0.isEmpty }
        let addresses = (obj["status"]["loadBalancer"]["ingress"].array ?? []).compactMap {
            $0["ip"].string ?? $0["hostname"].string
        }
        return [
            Tables.nameCell(obj), .string(spec["ingressClassName"].string ?? "<none>"),
            .string(hosts.isEmpty ? "*" : hosts.joined(separator: ",")), .string(addresses.joined(separator: ",")),
            .string((spec["tls"].array ?? []).isEmpty ? "80" : "80, 443"), Tables.ageCell(obj),
        ]
    }
}

/// networking.k8s.io/v1 IngressClass: which controller serves Ingresses of a class, with optional
/// parameters; the controller is fixed once set.
struct IngressClassStrategy: ResourceStrategy {
    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if !obj["spec"]["parameters"].isNull && obj["spec"]["parameters"]["scope"].isNull {
            obj["spec"]["parameters"]["scope"] = "Cluster"
        }
    }

    func validate(_ obj: JSON) -> [APIError.Cause] {
        let spec = obj["spec"]
        var errs: [APIError.Cause] = []
        let controller = spec["controller"].string ?? ""
        if controller.isEmpty {
            errs.append(FieldChecks.required("spec.controller"))
        } else if controller.utf8.count > 250 {
            errs.append(.init("spec.controller", "FieldValueTooLong", "Too long: may not be more than 250 bytes"))
        } else if !Self.isDomainPrefixedPath(controller) {
            errs.append(
                FieldChecks.invalid(
                    "spec.controller", .string(controller), "must be a domain-prefixed path (such as \"acme.io/foo\")"))
        }
        let parameters = spec["parameters"]
        guard !parameters.isNull else { return errs }
        if (parameters["kind"].string ?? "").isEmpty { errs.append(FieldChecks.required("spec.parameters.kind")) }
        if (parameters["name"].string ?? "").isEmpty { errs.append(FieldChecks.required("spec.parameters.name")) }
        errs += FieldChecks.supported(parameters["scope"], ["Cluster", "Namespace"], "spec.parameters.scope")
        let namespace = parameters["namespace"].string ?? ""
        if parameters["scope"].string == "Namespace" && namespace.isEmpty {
            errs.append(
                FieldChecks.required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'"))
        }
        if parameters["scope"].string == "Cluster" && !namespace.isEmpty {
            errs.append(FieldChecks.forbidden("spec.parameters.namespace", "`parameters.scope` is set to 'Cluster'"))
        }
        return errs
    }

    /// `host/path`: a DNS subdomain, then a non-empty path.
    static func isDomainPrefixedPath(_ text: String) -> Bool {
        guard let slash = text.firstIndex(of: "/") else { return false }
        return Validation.isDNS1123Subdomain(String(text[..<slash])) && text[slash...].count > 1
    }

    func validateUpdate(_ obj: JSON, old: JSON, _ ctx: StrategyContext) -> [APIError.Cause] {
        FieldChecks.immutable(obj["spec"]["controller"], old["spec"]["controller"], "spec.controller")
    }

    var tableColumns: [Tables.Column] {
        [Tables.nameColumn, .init(name: "Controller"), .init(name: "Parameters"), Tables.ageColumn]
    }
    func tableCells(_ obj: JSON) -> [JSON] {
        let parameters = obj["spec"]["parameters"]
        var shown = "<none>"
        if !parameters.isNull {
            shown = parameters["kind"].string ?? ""
            if let group = parameters["apiGroup"].string { shown += "." + group }
            shown += "/" + (parameters["name"].string ?? "")
        }
        return [
            Tables.nameCell(obj), .string(obj["spec"]["controller"].string ?? ""), .string(shown), Tables.ageCell(obj),
        ]
    }
}
