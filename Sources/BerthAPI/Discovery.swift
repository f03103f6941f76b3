/// Discovery documents: /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>, and aggregated discovery (v2).
enum Discovery {
    /// Non-stored endpoints that clients look up in discovery.
    static let reviewGroup = "authorization.k8s.io"
    /// Who the caller is (SelfSubjectReview, `kubectl auth whoami`) and whose a token is (TokenReview).
    static let authenticationGroup = "authentication.k8s.io"

    static func apiVersions(serverAddress: String) -> JSON {
        [
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]],
        ]
    }

    /// Served by the API server from the node agents (`kubectl top`), not stored.
    static let metricsGroup = "metrics.k8s.io"

    /// Built-in groups, then the groups of custom resources (in the order their definitions came).
    static func allGroups(_ types: [ResourceType] = Registry.all) -> [String] {
        var custom: [String] = []
        for r in types where r.custom != nil && !custom.contains(r.group) { custom.append(r.group) }
        return Registry.groups + [authenticationGroup, reviewGroup, metricsGroup] + custom
    }

    /// The versions of a group, preferred first (Kubernetes' version priority).
    static func versions(of g: String, _ types: [ResourceType]) -> [String] {
        if let v = builtInVersion(g) { return [v] }
        return Array(Set(types.filter { $0.group == g }.map(\.version))).sorted(by: APIVersionOrder.before)
    }

    /// The version served of a group that is not stored.
    static func builtInVersion(_ g: String) -> String? {
        g == reviewGroup || g == authenticationGroup ? "v1" : g == metricsGroup ? "v1beta1" : nil
    }

    static func group(_ g: String, _ types: [ResourceType] = Registry.all) -> JSON {
        let vs = versions(of: g, types)
        let gvs: [JSON] = (vs.isEmpty ? ["v1"] : vs).map { v in
            ["groupVersion": .string("\(g)/\(v)"), "version": .string(v)]
        }
        return [
            "kind": "APIGroup", "apiVersion": "v1", "name": .string(g), "versions": .array(gvs),
            "preferredVersion": gvs[0],
        ]
    }

    static func groupList(_ types: [ResourceType] = Registry.all) -> JSON {
        [
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": .array(allGroups(types).map { stripKind(group($0, types)) }),
        ]
    }
    static func stripKind(_ j: JSON) -> JSON { var j = j; j["kind"] = .null; j["apiVersion"] = .null; return j }

    static func resources(group: String, version: String, _ types: [ResourceType] = Registry.all) -> [JSON] {
        if group == metricsGroup {
            guard version == "v1beta1" else { return [] }
            return [
                [
                    "name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics",
                    "verbs": ["get", "list"],
                ],
                [
                    "name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics",
                    "verbs": ["get", "list"],
                ],
            ]
        }
        if group == authenticationGroup {
            guard version == "v1" else { return [] }
            return [
                [
                    "name": "selfsubjectreviews", "singularName": "selfsubjectreview", "namespaced": false,
                    "kind": "SelfSubjectReview", "verbs": ["create"],
                ],
                [
                    "name": "tokenreviews", "singularName": "tokenreview", "namespaced": false, "kind": "TokenReview",
                    "verbs": ["create"],
                ],
            ]
        }
        if group == reviewGroup {
            guard version == "v1" else { return [] }
            return AccessReview.all.map { review in
                let r = review.resource
                return [
                    "name": .string(r.plural), "singularName": .string(r.singular), "namespaced": .bool(r.namespaced),
                    "kind": .string(r.kind), "verbs": ["create"],
                ]
            }
        }
        var out: [JSON] = []
        for r in types where r.group == group && r.version == version {
            var e: JSON = [
                "name": .string(r.plural), "singularName": .string(r.singular), "namespaced": .bool(r.namespaced),
                "kind": .string(r.kind), "verbs": .array(ResourceType.verbs.map { .string($0) }),
            ]
            if !r.shortNames.isEmpty { e["shortNames"] = .array(r.shortNames.map { .string($0) }) }
            if !r.categories.isEmpty { e["categories"] = .array(r.categories.map { .string($0) }) }
            out.append(e)
            for sub in r.subresources {
                switch sub {
                case "status", "approval":
                    out.append([
                        "name": .string("\(r.plural)/\(sub)"), "singularName": "", "namespaced": .bool(r.namespaced),
                        "kind": .string(r.kind), "verbs": ["get", "patch", "update"],
                    ])
                case "scale":
                    out.append([
                        "name": .string("\(r.plural)/scale"), "singularName": "", "namespaced": .bool(r.namespaced),
                        "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
                    ])
                case "binding":
                    out.append([
                        "name": .string("\(r.plural)/binding"), "singularName": "", "namespaced": true,
                        "kind": "Binding", "verbs": ["create"],
                    ])
                case "eviction":
                    // kubectl drain looks for exactly this (name, kind, group and version) to evict.
                    out.append([
                        "name": .string("\(r.plural)/eviction"), "singularName": "", "namespaced": true,
                        "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"],
                    ])
                case "token":
                    out.append([
                        "name": .string("\(r.plural)/token"), "singularName": "", "namespaced": true,
                        "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"],
                    ])
                case "log":
                    out.append([
                        "name": .string("\(r.plural)/log"), "singularName": "", "namespaced": true, "kind": "Pod",
                        "verbs": ["get"],
                    ])
                case "exec", "attach":
                    out.append([
                        "name": .string("\(r.plural)/\(sub)"), "singularName": "", "namespaced": true,
                        "kind": .string(sub == "exec" ? "PodExecOptions" : "PodAttachOptions"),
                        "verbs": ["create", "get"],
                    ])
                default: break
                }
            }
        }
        if group.isEmpty {
            out.append([
                "name": "bindings", "singularName": "binding", "namespaced": true, "kind": "Binding",
                "verbs": ["create"],
            ])
            out.append([
                "name": "componentstatuses", "singularName": "componentstatus", "namespaced": false,
                "kind": "ComponentStatus", "verbs": ["get", "list"], "shortNames": ["cs"],
            ])
        }
        return out
    }

    static func resourceList(group: String, version: String, _ types: [ResourceType] = Registry.all) -> JSON {
        [
            "kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": .string(group.isEmpty ? version : "\(group)/\(version)"),
            "resources": .array(resources(group: group, version: version, types)),
        ]
    }

    /// `application/json;g=apidiscovery.k8s.io;v=<version>;as=APIGroupDiscoveryList`. v2beta1 (what
    /// client-go up to 1.29 asks for) has the same shape as v2; only the apiVersion differs.
    static func aggregated(legacy: Bool, version: String = "v2", _ types: [ResourceType] = Registry.all) -> JSON {
        let groups: [(String, [String])] =
            legacy ? [("", ["v1"])] : allGroups(types).map { g in (g, versions(of: g, types)) }
        let items: [JSON] = groups.map { g, vs in
            [
                "metadata": ["name": .string(g), "creationTimestamp": .null],
                "versions": .array(vs.map { v in aggregatedVersion(g, v, types) }),
            ]
        }
        return [
            "kind": "APIGroupDiscoveryList", "apiVersion": .string("apidiscovery.k8s.io/\(version)"), "metadata": [:],
            "items": .array(items),
        ]
    }

    /// One version of a group in aggregated discovery: its resources with their subresources.
    static func aggregatedVersion(_ g: String, _ v: String, _ types: [ResourceType]) -> JSON {
        let all = resources(group: g, version: v, types)
        let res = all.filter { !($0["name"].string ?? "").contains("/") }
        let entries: [JSON] = res.map { e in
            let plural = e["name"].string ?? ""
            var d: JSON = [
                "resource": .string(plural),
                "responseKind": ["group": .string(g), "version": .string(v), "kind": e["kind"]],
                "scope": (e["namespaced"].bool ?? false) ? "Namespaced" : "Cluster",
                "singularResource": e["singularName"], "verbs": e["verbs"],
            ]
            if !e["shortNames"].isNull { d["shortNames"] = e["shortNames"] }
            if !e["categories"].isNull { d["categories"] = e["categories"] }
            let subs = all.filter { ($0["name"].string ?? "").hasPrefix(plural + "/") }
            if !subs.isEmpty {
                d["subresources"] = .array(
                    subs.map { s in
                        let sub = String((s["name"].string ?? "").dropFirst(plural.count + 1))
                        return [
                            "subresource": .string(sub),
                            "responseKind": [
                                "group": s["group"].isNull ? .string(g) : s["group"],
                                "version": s["version"].isNull ? .string(v) : s["version"], "kind": s["kind"],
                            ],
                            "verbs": s["verbs"],
                        ]
                    })
            }
            return d
        }
        return ["version": .string(v), "resources": .array(entries), "freshness": "Current"]
    }
}
