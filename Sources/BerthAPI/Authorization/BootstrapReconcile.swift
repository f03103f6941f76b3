/// The bootstrap policy made or brought up to date at server start, as kube-apiserver's
/// rbac/bootstrap-roles post-start hook reconciles it: a missing role or binding is made; one that
/// exists and is not marked `autoupdate: "false"` gets the rules, subjects, labels and annotations
/// it lacks (what a user added is kept); one marked "false" is left alone.
extension Handler {
    func reconcileBootstrapPolicy() async throws {
        let call = Call(
            method: .put, path: "", query: [:], headers: [:], body: [],
            user: UserInfo(name: "system:apiserver", groups: ["system:masters", "system:authenticated"]))
        for role in BootstrapPolicy.clusterRoles {
            try await reconcile(Registry.clusterRoles, BootstrapPolicy.object(role), call: call) { existing, wanted in
                var merged = existing
                if role.aggregatesLabel != nil {
                    // The aggregation controller owns an aggregated role's rules.
                    merged["aggregationRule"] = wanted["aggregationRule"]
                    return merged
                }
                let have = (existing["rules"].array ?? []).map(PolicyRule.init)
                let missing = role.rules.filter { !PolicyRule.uncovered(by: have, [$0]).isEmpty }
                if !missing.isEmpty { merged["rules"] = .array((existing["rules"].array ?? []) + missing.map(\.json)) }
                return merged
            }
        }
        for role in BootstrapPolicy.namespacedRoles {
            try await reconcile(Registry.roles, BootstrapPolicy.object(role), call: call) { existing, _ in
                var merged = existing
                let have = (existing["rules"].array ?? []).map(PolicyRule.init)
                let missing = role.rules.filter { !PolicyRule.uncovered(by: have, [$0]).isEmpty }
                if !missing.isEmpty { merged["rules"] = .array((existing["rules"].array ?? []) + missing.map(\.json)) }
                return merged
            }
        }
        for binding in BootstrapPolicy.clusterRoleBindings + BootstrapPolicy.namespacedRoleBindings {
            try await reconcile(
                binding.namespace == nil ? Registry.clusterRoleBindings : Registry.roleBindings,
                BootstrapPolicy.object(binding), call: call
            ) {
                existing, wanted in
                var merged = existing
                var subjects = existing["subjects"].array ?? []
                for subject in wanted["subjects"].array ?? []
                where !subjects.contains(where: {
                    $0["kind"] == subject["kind"] && $0["name"] == subject["name"]
                        && ($0["namespace"].string ?? "") == (subject["namespace"].string ?? "")
                }) {
                    subjects.append(subject)
                }
                if !subjects.isEmpty { merged["subjects"] = .array(subjects) }
                return merged
            }
        }
        await server.rbac.invalidate()
    }

    private func reconcile(
        _ r: ResourceType, _ wanted: JSON, call: Call, merge: (JSON, JSON) -> JSON
    ) async throws {
        let name = wanted["metadata"]["name"].string ?? ""
        let namespace = wanted["metadata"]["namespace"].string
        guard let existing = try await storedObject(r, namespace: namespace, name: name) else {
            do {
                _ = try await createObject(r, namespace: namespace, obj: wanted, dryRun: false)
            } catch let error as APIError where error.code == 409 {}  // another server made it first
            return
        }
        if existing["metadata"]["annotations"][BootstrapPolicy.autoupdateAnnotation].string == "false" { return }
        var merged = merge(existing, wanted)
        for field in ["labels", "annotations"] {
            var values = wanted["metadata"][field].object ?? [:]
            for (key, value) in existing["metadata"][field].object ?? [:] { values[key] = value }
            merged["metadata"][field] = .object(values)
        }
        guard merged != existing else { return }
        do {
            _ = try await updateObject(r, namespace: namespace, name: name, new: merged, subresource: nil, call: call)
        } catch let error as APIError where error.code == 409 {}  // another server reconciled it meanwhile
    }
}
