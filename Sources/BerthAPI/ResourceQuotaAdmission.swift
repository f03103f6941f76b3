import BerthStore

/// Upstream's ResourceQuota admission plugin: a create (or an update that uses more, such as a Service
/// turned LoadBalancer) in a namespace with ResourceQuotas is charged against each quota that selects
/// it. Over a quota's hard limit it is refused — 403 Forbidden, `exceeded quota: NAME, requested: …,
/// used: …, limited: …` — and a pod that does not state the cpu or memory a quota limits is refused
/// with `failed quota: NAME: must specify …`. Otherwise the charge is written into the quota's
/// `status.used` before the object is stored (a conditional write, retried on conflict), so two
/// creates racing for the last unit cannot both get it. The quota controller recounts later, which
/// also gives back what deleted objects used.
enum ResourceQuotaAdmission {
    /// `name`: the object's name as the request gave it (its generateName when it had none), for the
    /// messages, as upstream's admission names it before the name is generated.
    static func admit(_ obj: JSON, old: JSON? = nil, _ r: ResourceType, name: String, dryRun: Bool, handler: Handler)
        async throws
    {
        guard r.namespaced, let namespace = obj["metadata"]["namespace"].string, !namespace.isEmpty else { return }
        var delta = QuotaUsage.usage(of: obj, r)
        if let old {
            let before = QuotaUsage.usage(of: old, r)
            for (resource, amount) in delta.milli {
                delta.milli[resource] = max(0, amount - (before.milli[resource] ?? 0))
            }
            delta = delta.withoutZeros
            // An update that uses nothing more needs no quota (and reads none).
            if delta.isEmpty { return }
        }
        for _ in 0..<Handler.conflictRetries {
            let quotas = try await handler.storedObjects(Registry.resourceQuotas, namespace: namespace)
                .sorted { ($0.object["metadata"]["name"].string ?? "") < ($1.object["metadata"]["name"].string ?? "") }
            if quotas.isEmpty { return }
            var charges: [(KeyValue, JSON)] = []
            for (kv, quota) in quotas where QuotaUsage.quota(quota, selects: obj, r) {
                let quotaName = quota["metadata"]["name"].string ?? ""
                // The controller copies spec.hard into status.hard; a quota it has not seen yet has only spec.
                let hardJSON =
                    (quota["status"]["hard"].object ?? [:]).isEmpty ? quota["spec"]["hard"] : quota["status"]["hard"]
                let hard = ResourceAmounts(hardJSON)
                let tracked = QuotaUsage.tracked(hard.names, by: r)
                if tracked.isEmpty { continue }
                if old == nil, r.group.isEmpty, r.plural == "pods",
                    let missing = QuotaUsage.missingConstraints(tracked, pod: obj)
                {
                    throw forbidden(r, name, "failed quota: \(quotaName): \(missing)")
                }
                let requested = delta.masked(tracked).withoutZeros
                if requested.isEmpty { continue }
                var used = ResourceAmounts(quota["status"]["used"])
                if !used.names.isSuperset(of: tracked) {
                    // Not counted yet (a new quota): count this kind's objects now rather than refuse.
                    let counted = try await recount(
                        r, namespace: namespace, quota: quota, tracked: tracked, handler: handler)
                    for resource in tracked where used.milli[resource] == nil {
                        used.milli[resource] = counted.milli[resource] ?? 0
                        if counted.binary.contains(resource) { used.binary.insert(resource) }
                    }
                }
                var total = used
                total.add(requested)
                let exceeded = requested.names.filter { (total.milli[$0] ?? 0) > (hard.milli[$0] ?? 0) }
                if !exceeded.isEmpty {
                    throw forbidden(
                        r, name,
                        "exceeded quota: \(quotaName), requested: \(requested.masked(exceeded).described), used: \(used.masked(exceeded).described), limited: \(hard.masked(exceeded).described)"
                    )
                }
                if dryRun { continue }
                var charged = quota
                charged["status"]["hard"] = hardJSON
                charged["status"]["used"] = total.masked(hard.names).json
                charged["metadata"]["resourceVersion"] = .null
                charges.append((kv, charged))
            }
            var lost = false
            for (kv, charged) in charges {
                do {
                    _ = try await handler.store.update(
                        kv.key, value: handler.encodeForStore(charged), expectedRevision: kv.modRevision)
                } catch StoreError.conflict {
                    // Someone else charged (or the controller recounted) this quota: judge again on its news.
                    lost = true
                    break
                }
            }
            if !lost { return }
        }
        throw APIError.conflict(Registry.resourceQuotas, "")
    }

    /// What the namespace's stored objects of `r` that the quota selects use of `tracked`.
    static func recount(_ r: ResourceType, namespace: String, quota: JSON, tracked: Set<String>, handler: Handler)
        async throws -> ResourceAmounts
    {
        var total = ResourceAmounts()
        for (_, object) in try await handler.storedObjects(r, namespace: namespace)
        where QuotaUsage.quota(quota, selects: object, r) {
            total.add(QuotaUsage.usage(of: object, r).masked(tracked))
        }
        return total
    }

    static func forbidden(_ r: ResourceType, _ name: String, _ reason: String) -> APIError {
        APIError.forbidden(
            name.isEmpty ? "\(r.plural) is forbidden: \(reason)" : "\(r.plural) \"\(name)\" is forbidden: \(reason)")
    }
}
