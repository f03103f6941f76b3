/// core/v1 Namespace (upstream pkg/registry/core/namespace/strategy.go and storage.go's Delete).
struct NamespaceStrategy: ResourceStrategy {
    var namesAreLabels: Bool { true }

    func applyDefaults(_ obj: inout JSON, creating: Bool) {
        if obj["status"]["phase"].isNull { obj["status"]["phase"] = "Active" }
        if let name = obj["metadata"]["name"].string {
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = .string(name)
        }
        if creating {
            // The namespace controller's finalizer, removed through namespaces/finalize once it is empty.
            var finalizers = obj["spec"]["finalizers"].array ?? []
            if !finalizers.contains("kubernetes") { finalizers.append("kubernetes") }
            obj["spec"]["finalizers"] = .array(finalizers)
        }
    }

    /// spec (its finalizers) changes only through namespaces/<name>/finalize.
    func prepareForUpdate(_ obj: inout JSON, old: JSON, _ ctx: StrategyContext) throws {
        splitSpecAndStatus(&obj, old: old, ctx)
        let requested = obj["spec"]["finalizers"]
        obj["spec"] = old["spec"].isNull ? obj["spec"] : old["spec"]
        if ctx.subresource == "finalize" { obj["spec"]["finalizers"] = .array(requested.array ?? []) }
    }

    /// Every namespace needs its "default" ServiceAccount (the ServiceAccount controller's job upstream;
    /// made here so a pod created right after its namespace finds it).
    func afterCreate(_ obj: JSON, handler: Handler) async {
        guard let name = obj["metadata"]["name"].string else { return }
        _ = try? await handler.createObject(
            Registry.serviceAccounts, namespace: name, obj: ["metadata": ["name": "default"]], dryRun: false)
    }

    /// Upstream's namespace deletion: mark it Terminating; the namespace controller deletes its contents and
    /// then removes the "kubernetes" finalizer (namespaces/finalize), which deletes it. Without that
    /// controller the namespace goes at once and its contents after it (`afterDelete`).
    func planDeletion(_ obj: inout JSON, gracePeriod: Int64?, _ ctx: StrategyContext) throws -> DeletionPlan {
        guard ctx.config.namespaceController, !(obj["spec"]["finalizers"].array ?? []).isEmpty else {
            return .proceed(gracePeriod: 0)
        }
        if !obj["metadata"]["deletionTimestamp"].isNull {
            let name = obj["metadata"]["name"].string ?? ""
            throw APIError(
                code: 409, reason: "Conflict",
                message:
                    "Operation cannot be fulfilled on namespaces \"\(name)\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
                details: APIError.details(ctx.resource, name))
        }
        obj["metadata"]["deletionTimestamp"] = .string(Handler.now())
        obj["status"]["phase"] = "Terminating"
        return .markOnly
    }
    /// A terminating Namespace also waits for its spec.finalizers when the namespace controller runs.
    func readyToRemove(_ obj: JSON, _ ctx: StrategyContext) -> Bool {
        !ctx.config.namespaceController || (obj["spec"]["finalizers"].array ?? []).isEmpty
    }
    func afterDelete(_ obj: JSON, handler: Handler) async {
        guard let name = obj["metadata"]["name"].string else { return }
        Task { await Self.deleteContents(name, handler: handler) }
    }

    /// Without the namespace controller: everything stored in the namespace goes, straight from the store.
    static func deleteContents(_ ns: String, handler: Handler) async {
        for r in Registry.stored + handler.server.customResources.types where r.namespaced {
            guard
                let page = try? await handler.store.list(
                    prefix: r.prefix(namespace: ns), startAfter: nil, limit: 0, revision: nil)
            else { continue }
            for kv in page.items { _ = try? await handler.store.delete(kv.key, expectedRevision: nil) }
        }
    }

    var fieldLabels: FieldLabelSet {
        .init(getters: ["status.phase": FieldLabels.string("status.phase", default: "Active")], ownConversion: true)
    }

    var tableColumns: [Tables.Column] { [Tables.nameColumn, .init(name: "Status"), Tables.ageColumn] }
    func tableCells(_ obj: JSON) -> [JSON] {
        [Tables.nameCell(obj), .string(obj["status"]["phase"].string ?? "Active"), Tables.ageCell(obj)]
    }
}
