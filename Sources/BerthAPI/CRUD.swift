import BerthStore
import Foundation
import Hummingbird
import NIOCore

extension Handler {
    /// How often a write that lost a race with another writer is retried on the newer object when the
    /// client set no precondition. Upstream's GuaranteedUpdate retries without a bound; a bound this high
    /// is never reached by honest contention (eight was: four clients scaling one workload while its
    /// controller wrote status lost eight rounds in a row on a slow CI machine) but still ends a livelock.
    static let conflictRetries = 256

    // MARK: create

    func createObject(
        _ r: ResourceType, namespace: String?, obj input: JSON, dryRun: Bool, manager: String? = nil,
        operation: String = "Update", user: UserInfo? = nil, warnings: RequestWarnings? = nil
    ) async throws -> JSON {
        var obj = input
        obj["apiVersion"] = .string(r.apiVersion)
        obj["kind"] = .string(r.kind)
        if obj["metadata"].isNull { obj["metadata"] = [:] }
        if r.namespaced {
            obj["metadata"]["namespace"] = .string(namespace ?? "default")
        } else {
            obj["metadata"]["namespace"] = .null
        }
        if (obj["metadata"]["name"].string ?? "").isEmpty, let gen = obj["metadata"]["generateName"].string,
            !gen.isEmpty
        {
            let chars = Array("bcdfghjklmnpqrstvwxz2456789")
            obj["metadata"]["name"] = .string(gen + String((0..<5).map { _ in chars.randomElement()! }))
        }
        let name = obj["metadata"]["name"].string ?? ""
        if r.namespaced, let ns = namespace {
            // Upstream's NamespaceLifecycle admission: no new content in a missing or terminating namespace.
            let nsType = Registry.namespaces
            guard let nsKV = try await store.get(nsType.key(namespace: nil, name: ns)) else {
                throw APIError.notFound(nsType, ns)
            }
            if (try? decodeStored(nsKV, nsType))?["metadata"]["deletionTimestamp"].isNull == false {
                throw APIError.forbidden(
                    "\(r.plural) \"\(name)\" is forbidden: unable to create new content in namespace \(ns) because it is being terminated"
                )
            }
        }
        obj["metadata"]["uid"] = .string(UUID().uuidString.lowercased())
        obj["metadata"]["creationTimestamp"] = .string(Self.now())
        obj["metadata"]["deletionTimestamp"] = .null
        obj["metadata"]["resourceVersion"] = .null
        if r.hasSpec { obj["metadata"]["generation"] = 1 }
        let strategy = r.strategy
        let ctx = StrategyContext(resource: r, user: user, subresource: nil, config: server.config)
        Schema.normalize(&obj, r)
        strategy.applyDefaults(&obj, creating: true)
        // Mutating admission before the strategy's own preparation, as upstream orders them: a pod's QoS
        // class is computed from the resources LimitRanger may have set.
        try await strategy.admitCreate(&obj, ctx, handler: self)
        let requestedName = input["metadata"]["name"].string ?? input["metadata"]["generateName"].string ?? ""
        var attributes = AdmissionAttributes(
            operation: .create, resource: r, subresource: "", name: name, namespace: r.namespaced ? namespace : nil,
            object: obj, oldObject: nil, user: user ?? AdmissionAttributes.loopbackUser, dryRun: dryRun,
            options: AdmissionAttributes.options(.create, dryRun: dryRun, fieldManager: manager), warnings: warnings)
        try await admitMutating(&attributes)
        if let mutated = attributes.object, mutated != obj {
            obj = mutated
            Schema.normalize(&obj, r)
            strategy.applyDefaults(&obj, creating: true)
        }
        strategy.prepareForCreate(&obj, ctx)
        if let manager {
            obj = Self.recordManager(obj, manager: manager, operation: operation, resource: r)
        }
        let errs = Validation.validate(obj, r)
        if !errs.isEmpty { throw APIError.invalid(r, name, errs) }
        // Validating admission last, as upstream orders it (policies and webhooks, then quota); refusals
        // name the object as the request did.
        attributes.object = obj
        try await admitValidating(attributes)
        try await ResourceQuotaAdmission.admit(obj, r, name: requestedName, dryRun: dryRun, handler: self)
        let key = r.key(namespace: namespace, name: name)
        let out = try await strategy.create(obj, key: key, ctx, handler: self) {
            try await self.store(r, key: key, obj: $0, dryRun: dryRun)
        }
        if !dryRun { await strategy.afterCreate(out, handler: self) }
        return out
    }

    private func store(_ r: ResourceType, key: String, obj: JSON, dryRun: Bool) async throws -> JSON {
        let name = obj["metadata"]["name"].string ?? ""
        if dryRun {
            if try await store.get(key) != nil { throw APIError.alreadyExists(r, name) }
            return obj
        }
        do {
            let rev = try await store.create(key, value: encodeForStore(obj, r))
            var out = obj
            out["metadata"]["resourceVersion"] = .string(String(rev))
            return out
        } catch let e as StoreError { throw Self.map(e, r, name) }
    }

    // MARK: get / list

    /// The stored object, decoded; nil when there is none (built-in admission reading another object,
    /// with an error of its own for a missing one).
    func storedObject(_ r: ResourceType, namespace: String?, name: String) async throws -> JSON? {
        guard let kv = try await store.get(r.key(namespace: namespace, name: name)) else { return nil }
        return try decodeStored(kv, r)
    }

    /// Every stored object of `r` (in `namespace`), decoded, beside its store entry (whose revision a
    /// conditional write of it needs); entries that do not decode are left out.
    func storedObjects(_ r: ResourceType, namespace: String?) async throws -> [(kv: KeyValue, object: JSON)] {
        let page = try await store.list(
            prefix: r.prefix(namespace: namespace), startAfter: nil, limit: 0, revision: nil)
        return page.items.compactMap { kv in (try? decodeStored(kv, r)).map { (kv, $0) } }
    }

    func getObject(_ r: ResourceType, namespace: String?, name: String, call: Call? = nil) async throws -> JSON {
        guard let kv = try await store.get(r.key(namespace: namespace, name: name)) else {
            throw APIError.notFound(r, name)
        }
        let obj = try decodeStored(kv, r)
        if let call, call.wantsTable {
            return Tables.table(
                [obj], r, resourceVersion: String(kv.modRevision), continueToken: nil,
                includeObject: call.query["includeObject"] ?? "Metadata")
        }
        return obj
    }

    struct ContinueToken: Codable { var rv: Int64; var start: String }

    func list(_ call: Call, _ r: ResourceType, namespace: String?) async throws -> Response {
        let labels = try LabelSelector(call.query["labelSelector"] ?? "")
        let fields = try FieldSelector(call.query["fieldSelector"] ?? "", for: r)
        let limit = Int(call.query["limit"] ?? "") ?? 0
        if limit < 0 { throw APIError.badRequest("limit must be non-negative") }
        let prefix = r.prefix(namespace: namespace)
        var startAfter: String?
        var revision: Int64?
        if let token = call.query["continue"], !token.isEmpty {
            guard let data = Data(base64Encoded: token),
                let t = try? JSONDecoder().decode(ContinueToken.self, from: data),
                t.start.hasPrefix(prefix) || namespace == nil
            else {
                throw APIError.badRequest(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            }
            startAfter = t.start; revision = t.rv
            let compacted = try await store.compactedRevision()
            if t.rv < compacted {
                throw APIError.gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
                )
            }
        } else if let rv = call.query["resourceVersion"], !rv.isEmpty, rv != "0" {
            guard let v = Int64(rv) else { throw APIError.badRequest("invalid resource version \"\(rv)\"") }
            if call.query["resourceVersionMatch"] == "Exact" {
                revision = v
            } else {
                let cur = try await store.currentRevision()
                if v > cur {
                    throw APIError(
                        code: 504, reason: "Timeout", message: "Too large resource version: \(v), current: \(cur)")
                }
            }
        }
        var items: [JSON] = []
        var next: String?
        var listRev: Int64 = 0
        var cursor = startAfter
        while true {
            let page: ListResult
            do {
                page = try await store.list(
                    prefix: prefix, startAfter: cursor, limit: limit > 0 ? max(limit - items.count, 1) : 0,
                    revision: revision)
            } catch let e as StoreError {
                if case .compacted = e { throw APIError.gone("too old resource version: \(revision ?? 0)") }
                throw Self.map(e, r, "")
            }
            listRev = page.revision
            revision = page.revision
            for kv in page.items {
                let obj = try decodeStored(kv, r)
                if !labels.isEmpty && !labels.matches(obj["metadata"]["labels"].stringMap) { continue }
                if !fields.isEmpty && !fields.matches(obj) { continue }
                items.append(obj)
            }
            cursor = page.items.last?.key
            if !page.more { next = nil; break }
            if limit > 0 && items.count >= limit {
                let t = ContinueToken(rv: page.revision, start: cursor ?? "")
                next = (try JSONEncoder().encode(t)).base64EncodedString()
                break
            }
        }
        if call.wantsTable {
            return reply(
                call,
                Tables.table(
                    items, r, resourceVersion: String(listRev), continueToken: next,
                    includeObject: call.query["includeObject"] ?? "Metadata"))
        }
        var meta: JSON = ["resourceVersion": .string(String(listRev))]
        if let next { meta["continue"] = .string(next) }
        let list: JSON = [
            "kind": .string(r.listKind), "apiVersion": .string(r.apiVersion), "metadata": meta,
            "items": .array(
                items.map {
                    var o = $0; o["kind"] = .null; o["apiVersion"] = .null; return o
                }),
        ]
        return reply(call, list)
    }

    // MARK: update

    /// Replaces an object (PUT, or the result of a patch). `expected` is the store revision the caller
    /// read (patch); otherwise the body's resourceVersion, if any, is the precondition.
    func updateObject(
        _ r: ResourceType, namespace: String?, name: String, new input: JSON, subresource: String?,
        call: Call, expected: Int64? = nil, current: KeyValue? = nil, manager: String? = nil,
        operation: String = "Update", recordUpdate: Bool = true
    ) async throws -> JSON {
        let key = r.key(namespace: namespace, name: name)
        let fetched: KeyValue?
        if let current { fetched = current } else { fetched = try await store.get(key) }
        guard let kv = fetched else { throw APIError.notFound(r, name) }
        let cur = try decodeStored(kv, r)
        var obj = input
        if let bodyName = obj["metadata"]["name"].string, !bodyName.isEmpty, bodyName != name {
            throw APIError.badRequest(
                "the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        var precondition = expected ?? kv.modRevision
        if let rv = obj["metadata"]["resourceVersion"].string, !rv.isEmpty {
            guard let v = Int64(rv) else {
                throw APIError.invalid(
                    r, name,
                    [
                        .init(
                            "metadata.resourceVersion", "FieldValueInvalid",
                            "Invalid value: \"\(rv)\": must be a number")
                    ])
            }
            if v != kv.modRevision { throw APIError.conflict(r, name) }
            precondition = v
        }
        obj["apiVersion"] = .string(r.apiVersion)
        obj["kind"] = .string(r.kind)
        obj["metadata"]["name"] = .string(name)
        obj["metadata"]["namespace"] = r.namespaced ? .string(namespace ?? "") : .null
        for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            obj["metadata"][f] = cur["metadata"][f]
        }
        let strategy = r.strategy
        let ctx = StrategyContext(resource: r, user: call.user, subresource: subresource, config: server.config)
        // Mutating admission sees the object as the request made it, before the strategy's preparation.
        var attributes = AdmissionAttributes(
            operation: .update, resource: r, subresource: subresource ?? "", name: name,
            namespace: r.namespaced ? namespace : nil, object: obj, oldObject: cur, user: call.user,
            dryRun: call.dryRun,
            options: AdmissionAttributes.options(
                .update, dryRun: call.dryRun, fieldManager: manager ?? call.query["fieldManager"]),
            warnings: call.warnings)
        try await admitMutating(&attributes)
        if let mutated = attributes.object { obj = mutated }
        try strategy.prepareForUpdate(&obj, old: cur, ctx)
        Schema.normalize(&obj, r)
        strategy.applyDefaults(&obj, creating: false)
        // Compared once both sides carry the defaults, as upstream compares decoded objects.
        if strategy.generationChanged(old: cur, new: obj, r) {
            obj["metadata"]["generation"] = .int((cur["metadata"]["generation"].int ?? 1) + 1)
        }
        if obj["metadata"]["managedFields"].isNull {
            obj["metadata"]["managedFields"] = cur["metadata"]["managedFields"]
        }
        // An update that changes nothing is not written (upstream keeps the resourceVersion and the
        // managedFields times): a new revision would wake every watcher and controller for nothing,
        // and fail the next conditional update of whoever read the object just before.
        // managedFields are the server's record (clients echo them back with their own time format).
        var unchanged = obj
        unchanged["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        unchanged["metadata"]["managedFields"] = cur["metadata"]["managedFields"]
        if unchanged == cur { return cur }
        if recordUpdate, let manager = manager ?? call.query["fieldManager"] ?? Self.defaultManager(call) {
            obj = Self.recordManager(
                obj, manager: manager, operation: operation, resource: r, subresource: subresource)
        }
        let errs =
            Validation.metadataUpdate(obj, old: cur) + strategy.validateUpdate(obj, old: cur, ctx)
            + Validation.validate(obj, r)
        if !errs.isEmpty { throw APIError.invalid(r, name, errs) }
        if obj == cur { return cur }
        attributes.object = obj
        try await admitValidating(attributes)
        try await strategy.admitUpdate(obj, old: cur, ctx, handler: self)
        try await ResourceQuotaAdmission.admit(obj, old: cur, r, name: name, dryRun: call.dryRun, handler: self)
        if call.dryRun { return obj }
        // Finalizers all gone on an object being deleted whose grace period is over: it goes away now (and
        // the garbage collector, watching, takes its dependents). A running pod's grace period ends when its
        // node agent deletes it with grace 0.
        if Self.deletionComplete(obj) && strategy.readyToRemove(obj, ctx) {
            do {
                let gone = try await store.delete(key, expectedRevision: precondition)
                var out = obj
                out["metadata"]["resourceVersion"] = .string(String(gone.modRevision))
                await strategy.afterDelete(out, handler: self)
                return out
            } catch let e as StoreError { throw Self.map(e, r, name) }
        }
        do {
            let rev = try await store.update(key, value: encodeForStore(obj, r), expectedRevision: precondition)
            obj["metadata"]["resourceVersion"] = .string(String(rev))
            return obj
        } catch let e as StoreError { throw Self.map(e, r, name) }
    }

    static func defaultManager(_ call: Call) -> String? {
        guard let ua = call.headers[.userAgent] else { return nil }
        return String(ua.split(separator: "/").first ?? "unknown")
    }

    /// Adds or refreshes the managedFields entry of `manager` (field set from the object's own fields for
    /// updates; for apply, the applied configuration's fields).
    static func recordManager(
        _ obj: JSON, manager: String, operation: String, resource r: ResourceType, subresource: String? = nil,
        applied: JSON? = nil
    ) -> JSON {
        var o = obj
        var entries = (o["metadata"]["managedFields"].array ?? []).filter {
            !($0["manager"].string == manager && $0["operation"].string == operation
                && $0["subresource"].string == subresource)
        }
        var fields = Patch.fieldSet(applied ?? obj, schema: Schema.top(r))
        if applied == nil {
            for f in ["f:status", "f:metadata"] where subresource == nil && f == "f:status" { fields[f] = .null }
        }
        var e: JSON = [
            "manager": .string(manager), "operation": .string(operation), "apiVersion": .string(r.apiVersion),
            "time": .string(now()), "fieldsType": "FieldsV1", "fieldsV1": fields,
        ]
        if let subresource { e["subresource"] = .string(subresource) }
        entries.append(e)
        o["metadata"]["managedFields"] = .array(entries)
        return o
    }

    // MARK: patch

    func patchObject(_ call: Call, _ r: ResourceType, namespace: String?, name: String, subresource: String?)
        async throws -> (JSON, Bool)
    {
        let key = r.key(namespace: namespace, name: name)
        var patch: JSON
        do {
            patch =
                call.contentType == "application/apply-patch+yaml"
                ? try JSON.parseYAML(String(decoding: call.body, as: UTF8.self)) : try JSON.parse(call.body)
        } catch let e as JSONParseError {
            throw APIError.badRequest("error decoding patch: \(e.description)")
        }
        for attempt in 0..<Self.conflictRetries {
            let kv = try await store.get(key)
            if call.contentType == "application/apply-patch+yaml" {
                guard let manager = call.query["fieldManager"], !manager.isEmpty else {
                    throw APIError.badRequest("PATCH /\(r.plural)/\(name): fieldManager is required for apply requests")
                }
                guard patch.object != nil else {
                    throw APIError.badRequest("error decoding YAML: apply patch must be an object")
                }
                try checkTypeMeta(patch, r)
                try Schema.check(patch, r, strict: call.strict && !KubeKinds.hasModel(r) && r.custom == nil)
                patch = try pruneUnknownFields(patch, r, call)
                guard let kv else {
                    var obj = patch
                    obj = Self.recordManager(
                        obj, manager: manager, operation: "Apply", resource: r, applied: patch)
                    return (
                        try await createObject(
                            r, namespace: namespace, obj: obj, dryRun: call.dryRun, user: call.user,
                            warnings: call.warnings),
                        true
                    )
                }
                let cur = try decodeStored(kv, r)
                try checkApplyConflicts(
                    cur, patch, manager: manager, force: call.query["force"] == "true", r: r, name: name)
                var merged = try Patch.strategic(
                    cur, removeStaleApplied(cur, patch, manager: manager, r), schema: Schema.top(r))
                merged["metadata"]["resourceVersion"] = patch["metadata"]["resourceVersion"]
                merged = Self.recordManager(
                    merged, manager: manager, operation: "Apply", resource: r,
                    subresource: subresource, applied: patch)
                do {
                    return (
                        try await updateObject(
                            r, namespace: namespace, name: name, new: merged, subresource: subresource, call: call,
                            expected: kv.modRevision, current: kv, manager: nil, recordUpdate: false), false
                    )
                } catch let e as APIError
                    where e.reason == "Conflict" && patch["metadata"]["resourceVersion"].isNull
                    && attempt < Self.conflictRetries - 1
                { continue }
            }
            guard let kv else { throw APIError.notFound(r, name) }
            var cur = try decodeStored(kv, r)
            let rv = cur["metadata"]["resourceVersion"]
            let result: JSON
            switch call.contentType {
            case "application/json-patch+json": result = try Patch.jsonPatch(cur, patch)
            case "application/merge-patch+json": result = Patch.merge(cur, patch)
            case "application/strategic-merge-patch+json":
                // Upstream: custom resources have no patch strategies to merge by.
                guard r.custom == nil else {
                    throw APIError(
                        code: 415, reason: "UnsupportedMediaType",
                        message:
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    )
                }
                result = try Patch.strategic(cur, patch, schema: Schema.top(r))
            default: throw APIError.unsupportedMediaType(call.contentType)
            }
            guard result.object != nil else { throw APIError.badRequest("patch did not produce an object") }
            if call.strict && !KubeKinds.hasModel(r) && r.custom == nil { try Schema.check(result, r, strict: true) }
            cur = try pruneUnknownFields(result, r, call)
            // A resourceVersion in the patch is a precondition; otherwise we retry on races.
            let explicit =
                patch["metadata"]["resourceVersion"].string != nil && result["metadata"]["resourceVersion"] != rv
            if !explicit { cur["metadata"]["resourceVersion"] = .null }
            do {
                return (
                    try await updateObject(
                        r, namespace: namespace, name: name, new: cur, subresource: subresource, call: call,
                        expected: kv.modRevision, current: kv), false
                )
            } catch let e as APIError where e.reason == "Conflict" && !explicit && attempt < Self.conflictRetries - 1 {
                continue
            }
        }
        throw APIError.conflict(r, name)
    }

    /// Fields that `manager` applied before but no longer applies are removed (if nobody else manages them).
    func removeStaleApplied(_ cur: JSON, _ patch: JSON, manager: String, _ r: ResourceType) -> JSON {
        guard
            let prev = (cur["metadata"]["managedFields"].array ?? []).first(where: {
                $0["manager"].string == manager && $0["operation"].string == "Apply"
            })
        else { return patch }
        var out = patch
        func prune(_ old: JSON, _ new: JSON, _ path: [String]) {
            for (k, v) in old.object ?? [:] where k.hasPrefix("f:") {
                let p = path + [String(k.dropFirst(2))]
                if new[k].isNull {
                    if !cur[p].isNull { setNull(&out, p) }
                } else {
                    prune(v, new[k], p)
                }
            }
        }
        prune(prev["fieldsV1"], Patch.fieldSet(patch, schema: Schema.top(r)), [])
        return out
    }
    private func setNull(_ j: inout JSON, _ path: [String]) {
        guard let first = path.first else { return }
        if path.count == 1 {
            if case .object(var o) = j { o[first] = .null; j = .object(o) }
            return
        }
        var child = j[first]
        if child.isNull { child = [:] }
        setNull(&child, Array(path.dropFirst()))
        if case .object(var o) = j { o[first] = child; j = .object(o) } else { j = .object([first: child]) }
    }

    /// A field applied with a different value than another applier set is a conflict (409) unless forced.
    func checkApplyConflicts(_ cur: JSON, _ patch: JSON, manager: String, force: Bool, r: ResourceType, name: String)
        throws
    {
        if force { return }
        var conflicts: [String] = []
        for entry in cur["metadata"]["managedFields"].array ?? [] {
            guard let other = entry["manager"].string, other != manager, entry["operation"].string == "Apply" else {
                continue
            }
            func walk(_ owned: JSON, _ path: [String]) {
                for (k, v) in owned.object ?? [:] where k.hasPrefix("f:") {
                    let p = path + [String(k.dropFirst(2))]
                    let applied = patch[p]
                    if applied.isNull { continue }
                    if (v.object ?? [:]).isEmpty {
                        if applied != cur[p] && applied.object == nil && applied.array == nil {
                            conflicts.append("conflict with \"\(other)\": ." + p.joined(separator: "."))
                        }
                    } else {
                        walk(v, p)
                    }
                }
            }
            walk(entry["fieldsV1"], [])
        }
        if !conflicts.isEmpty {
            throw APIError(
                code: 409, reason: "Conflict",
                message:
                    "Apply failed with \(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s"): \(conflicts.joined(separator: "\n"))",
                details: APIError.details(
                    r, name, causes: conflicts.map { ["reason": "FieldManagerConflict", "message": .string($0)] }))
        }
    }

    // MARK: scale

    func scale(_ r: ResourceType, namespace: String?, name: String) async throws -> JSON {
        let obj = try await getObject(r, namespace: namespace, name: name)
        return r.strategy.scale(of: obj)
    }
    static func scaleOf(_ obj: JSON) -> JSON {
        [
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": [
                "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
                "uid": obj["metadata"]["uid"],
                "resourceVersion": obj["metadata"]["resourceVersion"],
                "creationTimestamp": obj["metadata"]["creationTimestamp"],
            ],
            "spec": ["replicas": .int(obj["spec"]["replicas"].int ?? 0)],
            "status": [
                "replicas": .int(obj["status"]["replicas"].int ?? 0),
                "selector": .string(LabelSelector(object: obj["spec"]["selector"]).text),
            ],
        ]
    }

    func updateScale(_ call: Call, _ r: ResourceType, namespace: String?, name: String, patch: [UInt8]?) async throws
        -> JSON
    {
        for _ in 0..<Self.conflictRetries {
            guard let kv = try await store.get(r.key(namespace: namespace, name: name)) else {
                throw APIError.notFound(r, name)
            }
            let obj = try decodeStored(kv, r)
            var sc = r.strategy.scale(of: obj)
            let body = patch != nil ? try JSON.parse(call.body) : try bodyJSON(call, kind: "Scale")
            if patch != nil {
                switch call.contentType {
                case "application/json-patch+json": sc = try Patch.jsonPatch(sc, body)
                default: sc = Patch.merge(sc, body)
                }
            } else {
                sc = body
                if let rv = sc["metadata"]["resourceVersion"].string, !rv.isEmpty, rv != String(kv.modRevision) {
                    throw APIError.conflict(r, name)
                }
            }
            // A Scale without a resourceVersion (what `UpdateScale` sends after clearing it) is an
            // unconditional update: a controller's write in between is retried, not a 409.
            let retries = patch != nil || (body["metadata"]["resourceVersion"].string ?? "").isEmpty
            // ScaleSpec.replicas is omitempty upstream: a Scale for 0 replicas arrives without it.
            guard let replicas = sc["spec"]["replicas"].isNull ? 0 : sc["spec"]["replicas"].int, replicas >= 0 else {
                throw APIError(
                    code: 422, reason: "Invalid",
                    message:
                        "Scale.autoscaling \"\(name)\" is invalid: spec.replicas: Invalid value: \(sc["spec"]["replicas"].text): must be greater than or equal to 0"
                )
            }
            var updated = obj
            r.strategy.setReplicas(&updated, Int64(replicas))
            updated["metadata"]["resourceVersion"] = .null
            do {
                let out = try await updateObject(
                    r, namespace: namespace, name: name, new: updated, subresource: nil, call: call,
                    expected: kv.modRevision, current: kv)
                return r.strategy.scale(of: out)
            } catch let e as APIError where e.reason == "Conflict" && retries { continue }
        }
        throw APIError.conflict(r, name)
    }

    // MARK: delete

    /// DELETE of one object. The strategy decides how (a Namespace is only marked for its controller; a
    /// running Pod is marked for its grace period). The propagation policy adds the garbage collector's
    /// finalizers, as kube-apiserver does: Foreground ("foregroundDeletion") and Orphan ("orphan") keep the
    /// owner, marked, until the collector has deleted or orphaned its dependents and removed the finalizer
    /// (202 with the object); Background (the default) removes the owner now and the collector, seeing it
    /// gone, deletes the dependents afterwards. No dependent is touched inside the request.
    func deleteObject(_ call: Call, _ r: ResourceType, namespace: String?, name: String, options: JSON? = nil)
        async throws -> Response
    {
        var opts: JSON = options ?? [:]
        if options == nil, !call.body.isEmpty { opts = (try? bodyJSON(call, kind: "DeleteOptions")) ?? [:] }
        let policy = try Self.propagationPolicy(call, opts)
        let grace = Int64(call.query["gracePeriodSeconds"] ?? "") ?? opts["gracePeriodSeconds"].int
        let key = r.key(namespace: namespace, name: name)
        let strategy = r.strategy
        let ctx = StrategyContext(resource: r, user: call.user, subresource: nil, config: server.config)
        var admitted = false
        for _ in 0..<Self.conflictRetries {
            guard let kv = try await store.get(key) else { throw APIError.notFound(r, name) }
            var obj = try decodeStored(kv, r)
            if let uid = opts["preconditions"]["uid"].string, uid != obj["metadata"]["uid"].string {
                throw APIError(
                    code: 409, reason: "Conflict",
                    message:
                        "Precondition failed: UID in precondition: \(uid), UID in object meta: \(obj["metadata"]["uid"].string ?? "")"
                )
            }
            if let rv = opts["preconditions"]["resourceVersion"].string, rv != String(kv.modRevision) {
                throw APIError.conflict(r, name)
            }
            let before = obj
            if !admitted {
                // Admission of the DELETE: webhooks and policies see the object being deleted.
                var attributes = AdmissionAttributes(
                    operation: .delete, resource: r, subresource: "", name: name,
                    namespace: r.namespaced ? namespace : nil, object: nil, oldObject: obj, user: call.user,
                    dryRun: call.dryRun, options: Self.deleteOptions(opts), warnings: call.warnings)
                try await admitMutating(&attributes)
                try await admitValidating(attributes)
                admitted = true
            }
            switch try strategy.planDeletion(&obj, gracePeriod: grace, ctx) {
            case .markOnly:
                if call.dryRun { return reply(call, obj) }
                obj["metadata"]["resourceVersion"] = .null
                do {
                    let rev = try await store.update(
                        key, value: encodeForStore(obj, r), expectedRevision: kv.modRevision)
                    obj["metadata"]["resourceVersion"] = .string(String(rev))
                    return reply(call, obj)
                } catch StoreError.conflict { continue }
            case .proceed(let gracePeriod):
                let had = (obj["metadata"]["finalizers"].array ?? []).compactMap(\.string)
                var finalizers = had
                // Without a garbage collector nothing would ever remove these finalizers.
                if server.config.garbageCollector {
                    if policy == .foreground && !finalizers.contains(Self.foregroundFinalizer) {
                        finalizers.append(Self.foregroundFinalizer)
                    }
                    if policy == .orphan && strategy.orphansDependents && !finalizers.contains(Self.orphanFinalizer) {
                        finalizers.append(Self.orphanFinalizer)
                    }
                }
                if finalizers.isEmpty && gracePeriod == 0 {
                    if call.dryRun { return reply(call, obj) }
                    do {
                        let gone = try await store.delete(key, expectedRevision: kv.modRevision)
                        obj["metadata"]["resourceVersion"] = .string(String(gone.modRevision))
                    } catch StoreError.conflict { continue } catch StoreError.notFound {
                        throw APIError.notFound(r, name)
                    }
                    await strategy.afterDelete(obj, handler: self)
                    return reply(call, obj)
                }
                // Marked: kept until the grace period ends (its node agent deletes it again with grace 0) and
                // the finalizers are gone. A second delete may shorten the grace period, never lengthen it.
                let previousGrace = before["metadata"]["deletionGracePeriodSeconds"].int
                let markedAlready = !before["metadata"]["deletionTimestamp"].isNull
                if markedAlready && finalizers == had && (previousGrace ?? 0) <= gracePeriod {
                    return reply(call, before, status: finalizers.isEmpty ? 200 : 202)
                }
                if !markedAlready { obj["metadata"]["deletionTimestamp"] = .string(Self.now()) }
                obj["metadata"]["deletionGracePeriodSeconds"] = .int(min(previousGrace ?? gracePeriod, gracePeriod))
                obj["metadata"]["finalizers"] = finalizers.isEmpty ? .null : .array(finalizers.map { .string($0) })
                if call.dryRun { return reply(call, obj, status: 202) }
                obj["metadata"]["resourceVersion"] = .null
                do {
                    let rev = try await store.update(
                        key, value: encodeForStore(obj, r), expectedRevision: kv.modRevision)
                    obj["metadata"]["resourceVersion"] = .string(String(rev))
                    return reply(call, obj, status: 202)
                } catch StoreError.conflict { continue }
            }
        }
        throw APIError.conflict(r, name)
    }

    /// The DeleteOptions admission is shown (the request's, typed).
    static func deleteOptions(_ opts: JSON) -> JSON {
        var o: JSON = opts.object == nil ? [:] : opts
        o["kind"] = "DeleteOptions"
        o["apiVersion"] = "meta.k8s.io/v1"
        return o
    }

    static let foregroundFinalizer = DeletionFinalizers.foreground
    static let orphanFinalizer = DeletionFinalizers.orphan

    enum PropagationPolicy: String { case background = "Background", foreground = "Foreground", orphan = "Orphan" }

    /// DeleteOptions.propagationPolicy (query or body), else the deprecated orphanDependents, else
    /// Background: the default of every apps/v1 and core/v1 kind served (the extensions/v1beta1 defaults
    /// that orphaned are not served).
    static func propagationPolicy(_ call: Call, _ opts: JSON) throws -> PropagationPolicy {
        if let text = call.query["propagationPolicy"] ?? opts["propagationPolicy"].string {
            guard let p = PropagationPolicy(rawValue: text) else {
                throw APIError(
                    code: 422, reason: "Invalid",
                    message:
                        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"\(text)\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                )
            }
            if opts["orphanDependents"].bool != nil {
                throw APIError(
                    code: 422, reason: "Invalid",
                    message:
                        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"\(text)\": orphanDependents and deletionPropagation cannot be both set"
                )
            }
            return p
        }
        if let orphan = opts["orphanDependents"].bool { return orphan ? .orphan : .background }
        return .background
    }

    /// Marked for deletion, no finalizers left and no grace period running: the object may go.
    static func deletionComplete(_ obj: JSON) -> Bool {
        !obj["metadata"]["deletionTimestamp"].isNull && (obj["metadata"]["finalizers"].array ?? []).isEmpty
            && (obj["metadata"]["deletionGracePeriodSeconds"].int ?? 0) == 0
    }

    func deleteCollection(_ call: Call, _ r: ResourceType, namespace: String?) async throws -> Response {
        let labels = try LabelSelector(call.query["labelSelector"] ?? "")
        let fields = try FieldSelector(call.query["fieldSelector"] ?? "", for: r)
        let page = try await store.list(
            prefix: r.prefix(namespace: namespace), startAfter: nil, limit: 0, revision: nil)
        var deleted: [JSON] = []
        for kv in page.items {
            let obj = try decodeStored(kv, r)
            if !labels.matches(obj["metadata"]["labels"].stringMap) || !fields.matches(obj) { continue }
            _ = try? await deleteObject(
                call, r, namespace: obj["metadata"]["namespace"].string, name: obj["metadata"]["name"].string ?? "")
            deleted.append(obj)
        }
        return reply(
            call,
            [
                "kind": .string(r.listKind), "apiVersion": .string(r.apiVersion), "metadata": [:],
                "items": .array(deleted),
            ])
    }
}

/// The finalizers through which the garbage collector (BerthControl's GarbageCollector) finishes Foreground
/// and Orphan deletes (upstream's metav1.FinalizerDeleteDependents and FinalizerOrphanDependents).
public enum DeletionFinalizers {
    public static let foreground = "foregroundDeletion"
    public static let orphan = "orphan"
}
