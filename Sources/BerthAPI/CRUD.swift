import BerthStore
import Foundation
import Hummingbird
import NIOCore

extension Handler {
    /// How often a write that lost a race with another writer is retried on the newer object when the
    /// client set no precondition. Upstream's GuaranteedUpdate retries without a bound; a bound this high
    /// is never reached by honest contention (eight was: four clients scaling one ReplicaSet while its
    /// controller wrote status lost eight rounds in a row on a slow CI machine) but still ends a livelock.
    static let conflictRetries = 256

    // MARK: create

    func createObject(_ r: ResourceType, namespace: String?, obj input: JSON, dryRun: Bool, manager: String? = nil,
                      operation: String = "Update") async throws -> JSON {
        var obj = input
        obj["apiVersion"] = .string(r.apiVersion)
        obj["kind"] = .string(r.kind)
        if obj["metadata"].isNull { obj["metadata"] = [:] }
        if r.namespaced { obj["metadata"]["namespace"] = .string(namespace ?? "default") } else { obj["metadata"]["namespace"] = .null }
        if (obj["metadata"]["name"].string ?? "").isEmpty, let gen = obj["metadata"]["generateName"].string, !gen.isEmpty {
            let chars = Array("bcdfghjklmnpqrstvwxz2456789")
            obj["metadata"]["name"] = .string(gen + String((0..<5).map { _ in chars.randomElement()! }))
        }
        let name = obj["metadata"]["name"].string ?? ""
        if r.namespaced, let ns = namespace, r.kind != "Namespace" {
            let nsType = Registry.find(group: "", version: "v1", plural: "namespaces")!
            guard let nsKV = try await store.get(nsType.key(namespace: nil, name: ns)) else { throw APIError.notFound(nsType, ns) }
            if (try? decodeStored(nsKV, nsType))?["metadata"]["deletionTimestamp"].isNull == false {
                throw APIError.forbidden("\(r.plural) \"\(name)\" is forbidden: unable to create new content in namespace \(ns) because it is being terminated")
            }
        }
        obj["metadata"]["uid"] = .string(UUID().uuidString.lowercased())
        obj["metadata"]["creationTimestamp"] = .string(Self.now())
        obj["metadata"]["deletionTimestamp"] = .null
        obj["metadata"]["resourceVersion"] = .null
        if r.hasSpec { obj["metadata"]["generation"] = 1 }
        Defaults.apply(&obj, r, creating: true)
        if r.kind == "Pod" { Self.addDefaultTolerations(&obj, seconds: server.config.defaultTolerationSeconds) }
        if let manager { obj = Self.recordManager(obj, manager: manager, operation: operation, apiVersion: r.apiVersion) }
        let errs = Validation.validate(obj, r)
        if !errs.isEmpty { throw APIError.invalid(r, name, errs) }
        if r.kind == "Pod" && !obj["spec"]["nodeName"].isNull && obj["status"]["phase"].string == "Pending" {
            // Bound at creation (e.g. static or DaemonSet pods): mark scheduled.
            obj["status"]["conditions"] = [["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(Self.now())]]
        }
        let key = r.key(namespace: namespace, name: name)
        if r.kind == "Service" {
            await Self.serviceLock.lock()
            do {
                obj = try await allocateService(obj, r, key: key)
                let out = try await store(r, key: key, obj: obj, dryRun: dryRun)
                await Self.serviceLock.unlock()
                return out
            } catch {
                await Self.serviceLock.unlock()
                throw error
            }
        }
        let out = try await store(r, key: key, obj: obj, dryRun: dryRun)
        if r.kind == "Namespace" && !dryRun {
            // The ServiceAccount controller's job upstream; every namespace needs its "default" account.
            let sa = Registry.find(group: "", version: "v1", plural: "serviceaccounts")!
            _ = try? await createObject(sa, namespace: name, obj: ["metadata": ["name": "default"]], dryRun: false)
        }
        return out
    }

    /// Upstream's DefaultTolerationSeconds admission: a pod that does not already tolerate the
    /// node.kubernetes.io/not-ready or /unreachable NoExecute taint tolerates it for `seconds`, after
    /// which the node lifecycle controller evicts it from a dead node.
    static func addDefaultTolerations(_ pod: inout JSON, seconds: Int64) {
        var tolerations = pod["spec"]["tolerations"].array ?? []
        func tolerated(_ key: String) -> Bool {
            tolerations.contains { t in
                let k = t["key"].string ?? "", effect = t["effect"].string ?? ""
                return (k == key || k.isEmpty) && (effect == "NoExecute" || effect.isEmpty)
            }
        }
        var added = false
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] where !tolerated(key) {
            tolerations.append(["key": .string(key), "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": .int(seconds)])
            added = true
        }
        if added { pod["spec"]["tolerations"] = .array(tolerations) }
    }

    private func store(_ r: ResourceType, key: String, obj: JSON, dryRun: Bool) async throws -> JSON {
        let name = obj["metadata"]["name"].string ?? ""
        if dryRun {
            if try await store.get(key) != nil { throw APIError.alreadyExists(r, name) }
            return obj
        }
        do {
            let rev = try await store.create(key, value: encodeForStore(obj))
            var out = obj
            out["metadata"]["resourceVersion"] = .string(String(rev))
            return out
        } catch let e as StoreError { throw Self.map(e, r, name) }
    }

    func allocateService(_ input: JSON, _ r: ResourceType, key: String) async throws -> JSON {
        var obj = input
        let type = obj["spec"]["type"].string ?? "ClusterIP"
        if type == "ExternalName" { return obj }
        let all = try await store.list(prefix: r.keyPrefix, startAfter: nil, limit: 0, revision: nil)
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
                    throw APIError.invalid(r, name, [.init("spec.clusterIPs", "FieldValueInvalid", "Invalid value: [\"\(ip)\"]: failed to allocate IP \(ip): the provided IP (\(ip)) is not in the valid range. The range of valid IPs is \(server.config.serviceCIDR)")])
                }
                if usedIPs.contains(ip) {
                    throw APIError.invalid(r, name, [.init("spec.clusterIPs", "FieldValueInvalid", "Invalid value: [\"\(ip)\"]: failed to allocate IP \(ip): provided IP is already allocated")])
                }
            }
        } else { wantIP = true }
        var ports = obj["spec"]["ports"].array ?? []
        let needPorts = type == "NodePort" || type == "LoadBalancer"
        var missing = 0
        if needPorts {
            for (i, p) in ports.enumerated() {
                if let np = p["nodePort"].int {
                    if !server.config.nodePortRange.contains(Int(np)) {
                        throw APIError.invalid(r, name, [.init("spec.ports[\(i)].nodePort", "FieldValueInvalid", "Invalid value: \(np): provided port is not in the valid range. The range of valid ports is \(server.config.nodePortRange.lowerBound)-\(server.config.nodePortRange.upperBound)")])
                    }
                    if usedPorts.contains(np) {
                        throw APIError.invalid(r, name, [.init("spec.ports[\(i)].nodePort", "FieldValueInvalid", "Invalid value: \(np): provided port is already allocated")])
                    }
                } else { missing += 1 }
            }
        }
        let (ip, newPorts) = try await server.allocator.allocate(used: usedIPs, usedPorts: usedPorts, wantIP: wantIP, wantPorts: missing)
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

    // MARK: get / list

    func getObject(_ r: ResourceType, namespace: String?, name: String, call: Call? = nil) async throws -> JSON {
        guard let kv = try await store.get(r.key(namespace: namespace, name: name)) else { throw APIError.notFound(r, name) }
        let obj = try decodeStored(kv, r)
        if let call, call.wantsTable {
            return Tables.table([obj], r, resourceVersion: String(kv.modRevision), continueToken: nil,
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
            guard let data = Data(base64Encoded: token), let t = try? JSONDecoder().decode(ContinueToken.self, from: data),
                  t.start.hasPrefix(prefix) || namespace == nil else {
                throw APIError.badRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            }
            startAfter = t.start; revision = t.rv
            let compacted = try await store.compactedRevision()
            if t.rv < compacted {
                throw APIError.gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
            }
        } else if let rv = call.query["resourceVersion"], !rv.isEmpty, rv != "0" {
            guard let v = Int64(rv) else { throw APIError.badRequest("invalid resource version \"\(rv)\"") }
            if call.query["resourceVersionMatch"] == "Exact" { revision = v } else {
                let cur = try await store.currentRevision()
                if v > cur {
                    throw APIError(code: 504, reason: "Timeout", message: "Too large resource version: \(v), current: \(cur)")
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
                page = try await store.list(prefix: prefix, startAfter: cursor, limit: limit > 0 ? max(limit - items.count, 1) : 0, revision: revision)
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
            return reply(call, Tables.table(items, r, resourceVersion: String(listRev), continueToken: next,
                                            includeObject: call.query["includeObject"] ?? "Metadata"))
        }
        var meta: JSON = ["resourceVersion": .string(String(listRev))]
        if let next { meta["continue"] = .string(next) }
        let list: JSON = ["kind": .string(r.listKind), "apiVersion": .string(r.apiVersion), "metadata": meta,
                          "items": .array(items.map { var o = $0; o["kind"] = .null; o["apiVersion"] = .null; return o })]
        return reply(call, list)
    }

    // MARK: update

    /// Replaces an object (PUT, or the result of a patch). `expected` is the store revision the caller
    /// read (patch); otherwise the body's resourceVersion, if any, is the precondition.
    func updateObject(_ r: ResourceType, namespace: String?, name: String, new input: JSON, subresource: String?,
                      call: Call, expected: Int64? = nil, current: KeyValue? = nil, manager: String? = nil,
                      operation: String = "Update", recordUpdate: Bool = true) async throws -> JSON {
        let key = r.key(namespace: namespace, name: name)
        let fetched: KeyValue?
        if let current { fetched = current } else { fetched = try await store.get(key) }
        guard let kv = fetched else { throw APIError.notFound(r, name) }
        let cur = try decodeStored(kv, r)
        var obj = input
        if let bodyName = obj["metadata"]["name"].string, !bodyName.isEmpty, bodyName != name {
            throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        var precondition = expected ?? kv.modRevision
        if let rv = obj["metadata"]["resourceVersion"].string, !rv.isEmpty {
            guard let v = Int64(rv) else {
                throw APIError.invalid(r, name, [.init("metadata.resourceVersion", "FieldValueInvalid", "Invalid value: \"\(rv)\": must be a number")])
            }
            if v != kv.modRevision { throw APIError.conflict(r, name) }
            precondition = v
        } else if expected == nil && ["Lease"].contains(r.kind) == false && call.method == .put && r.kind == "__never" {
            throw APIError.invalid(r, name, [.init("metadata.resourceVersion", "FieldValueInvalid", "must be specified for an update")])
        }
        obj["apiVersion"] = .string(r.apiVersion)
        obj["kind"] = .string(r.kind)
        obj["metadata"]["name"] = .string(name)
        obj["metadata"]["namespace"] = r.namespaced ? .string(namespace ?? "") : .null
        for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            obj["metadata"][f] = cur["metadata"][f]
        }
        if r.subresources.contains("status") {
            if subresource == "status" {
                obj = UpdateRules.prepareStatusUpdate(obj, current: cur, kind: r.kind)
            } else {
                obj["status"] = cur["status"]
            }
        }
        if r.kind == "Pod", subresource == "status", let node = call.user.nodeName, cur["spec"]["nodeName"].string != node {
            throw APIError.forbidden("pods \"\(name)\" is forbidden: node \"\(node)\" can only update pods bound to it")
        }
        if r.kind == "Namespace" {
            // spec (its finalizers) changes only through namespaces/<name>/finalize.
            let requested = obj["spec"]["finalizers"]
            obj["spec"] = cur["spec"].isNull ? obj["spec"] : cur["spec"]
            if subresource == "finalize" { obj["spec"]["finalizers"] = .array(requested.array ?? []) }
        }
        if r.kind == "Service" {
            // clusterIP and allocated nodePorts are immutable / preserved.
            if (obj["spec"]["clusterIP"].string ?? "").isEmpty { obj["spec"]["clusterIP"] = cur["spec"]["clusterIP"]; obj["spec"]["clusterIPs"] = cur["spec"]["clusterIPs"] }
            if obj["spec"]["clusterIP"] != cur["spec"]["clusterIP"] {
                throw APIError.invalid(r, name, [.init("spec.clusterIPs[0]", "FieldValueInvalid", "Invalid value: \(obj["spec"]["clusterIP"].text): may not change once set")])
            }
            if var ports = obj["spec"]["ports"].array {
                let old = cur["spec"]["ports"].array ?? []
                for i in ports.indices where ports[i]["nodePort"].isNull {
                    if let o = old.first(where: { $0["port"] == ports[i]["port"] }), !o["nodePort"].isNull { ports[i]["nodePort"] = o["nodePort"] }
                }
                obj["spec"]["ports"] = .array(ports)
            }
        }
        if r.kind == "Pod" && subresource == nil {
            // Pod spec is mostly immutable: only image and a few fields may change.
            var a = obj["spec"], b = cur["spec"]
            for s in [0, 1] {
                var x = s == 0 ? a : b
                x["containers"] = .array((x["containers"].array ?? []).map { var c = $0; c["image"] = .null; return c })
                x["activeDeadlineSeconds"] = .null; x["tolerations"] = .null
                if s == 0 { a = x } else { b = x }
            }
            Defaults.podSpec(&a); Defaults.podSpec(&b)
            if a != b && !(cur["spec"]["nodeName"].isNull && a["nodeName"] != b["nodeName"]) {
                throw APIError.invalid(r, name, [.init("spec", "FieldValueForbidden", "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")])
            }
        }
        Defaults.apply(&obj, r)
        // Compared once both sides carry the defaults, as upstream compares decoded objects.
        if r.hasSpec, Generation.specChanged(old: cur, new: obj) {
            obj["metadata"]["generation"] = .int((cur["metadata"]["generation"].int ?? 1) + 1)
        }
        if obj["metadata"]["managedFields"].isNull { obj["metadata"]["managedFields"] = cur["metadata"]["managedFields"] }
        // An update that changes nothing is not written (upstream keeps the resourceVersion and the
        // managedFields times): a new revision would wake every watcher and controller for nothing,
        // and fail the next conditional update of whoever read the object just before.
        // managedFields are the server's record (clients echo them back with their own time format).
        var unchanged = obj
        unchanged["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        unchanged["metadata"]["managedFields"] = cur["metadata"]["managedFields"]
        if unchanged == cur { return cur }
        if recordUpdate, let manager = manager ?? call.query["fieldManager"] ?? Self.defaultManager(call) {
            obj = Self.recordManager(obj, manager: manager, operation: operation, apiVersion: r.apiVersion, subresource: subresource)
        }
        let errs = UpdateRules.validate(obj, old: cur, r) + Validation.validate(obj, r)
        if !errs.isEmpty { throw APIError.invalid(r, name, errs) }
        if obj == cur { return cur }
        if call.dryRun { return obj }
        // Finalizers all gone on an object being deleted: it goes away now. A terminating Namespace also
        // waits for its spec.finalizers ("kubernetes": the namespace controller) when that controller runs.
        let namespaceFinalized = r.kind != "Namespace" || !server.config.namespaceController
            || (obj["spec"]["finalizers"].array ?? []).isEmpty
        if !obj["metadata"]["deletionTimestamp"].isNull && (obj["metadata"]["finalizers"].array ?? []).isEmpty && namespaceFinalized {
            do {
                let gone = try await store.delete(key, expectedRevision: precondition)
                var out = obj
                out["metadata"]["resourceVersion"] = .string(String(gone.modRevision))
                await collectGarbage(owner: out, policy: "Background")
                if r.kind == "Namespace" { Task { await self.deleteNamespaceContents(name) } }
                return out
            } catch let e as StoreError { throw Self.map(e, r, name) }
        }
        do {
            let rev = try await store.update(key, value: encodeForStore(obj), expectedRevision: precondition)
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
    static func recordManager(_ obj: JSON, manager: String, operation: String, apiVersion: String, subresource: String? = nil,
                              applied: JSON? = nil) -> JSON {
        var o = obj
        var entries = (o["metadata"]["managedFields"].array ?? []).filter {
            !($0["manager"].string == manager && $0["operation"].string == operation && $0["subresource"].string == subresource)
        }
        var fields = Patch.fieldSet(applied ?? obj)
        if applied == nil {
            for f in ["f:status", "f:metadata"] where subresource == nil && f == "f:status" { fields[f] = .null }
        }
        var e: JSON = ["manager": .string(manager), "operation": .string(operation), "apiVersion": .string(apiVersion),
                       "time": .string(now()), "fieldsType": "FieldsV1", "fieldsV1": fields]
        if let subresource { e["subresource"] = .string(subresource) }
        entries.append(e)
        o["metadata"]["managedFields"] = .array(entries)
        return o
    }

    // MARK: patch

    func patchObject(_ call: Call, _ r: ResourceType, namespace: String?, name: String, subresource: String?) async throws -> (JSON, Bool) {
        let key = r.key(namespace: namespace, name: name)
        let patch: JSON
        do {
            patch = call.contentType == "application/apply-patch+yaml"
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
                guard patch.object != nil else { throw APIError.badRequest("error decoding YAML: apply patch must be an object") }
                try checkTypeMeta(patch, r)
                try Schema.check(patch, r, strict: call.strict)
                guard let kv else {
                    var obj = patch
                    obj = Self.recordManager(obj, manager: manager, operation: "Apply", apiVersion: r.apiVersion, applied: patch)
                    return (try await createObject(r, namespace: namespace, obj: obj, dryRun: call.dryRun), true)
                }
                let cur = try decodeStored(kv, r)
                try checkApplyConflicts(cur, patch, manager: manager, force: call.query["force"] == "true", r: r, name: name)
                var merged = try Patch.strategic(cur, removeStaleApplied(cur, patch, manager: manager))
                merged["metadata"]["resourceVersion"] = patch["metadata"]["resourceVersion"]
                merged = Self.recordManager(merged, manager: manager, operation: "Apply", apiVersion: r.apiVersion,
                                            subresource: subresource, applied: patch)
                do {
                    return (try await updateObject(r, namespace: namespace, name: name, new: merged, subresource: subresource, call: call,
                                                   expected: kv.modRevision, current: kv, manager: nil, recordUpdate: false), false)
                } catch let e as APIError where e.reason == "Conflict" && patch["metadata"]["resourceVersion"].isNull && attempt < Self.conflictRetries - 1 { continue }
            }
            guard let kv else { throw APIError.notFound(r, name) }
            var cur = try decodeStored(kv, r)
            let rv = cur["metadata"]["resourceVersion"]
            let result: JSON
            switch call.contentType {
            case "application/json-patch+json": result = try Patch.jsonPatch(cur, patch)
            case "application/merge-patch+json": result = Patch.merge(cur, patch)
            case "application/strategic-merge-patch+json": result = try Patch.strategic(cur, patch)
            default: throw APIError.unsupportedMediaType(call.contentType)
            }
            guard result.object != nil else { throw APIError.badRequest("patch did not produce an object") }
            if call.strict { try Schema.check(result, r, strict: true) }
            cur = result
            // A resourceVersion in the patch is a precondition; otherwise we retry on races.
            let explicit = patch["metadata"]["resourceVersion"].string != nil && result["metadata"]["resourceVersion"] != rv
            if !explicit { cur["metadata"]["resourceVersion"] = .null }
            do {
                return (try await updateObject(r, namespace: namespace, name: name, new: cur, subresource: subresource, call: call,
                                               expected: kv.modRevision, current: kv), false)
            } catch let e as APIError where e.reason == "Conflict" && !explicit && attempt < Self.conflictRetries - 1 {
                continue
            }
        }
        throw APIError.conflict(r, name)
    }

    /// Fields that `manager` applied before but no longer applies are removed (if nobody else manages them).
    func removeStaleApplied(_ cur: JSON, _ patch: JSON, manager: String) -> JSON {
        guard let prev = (cur["metadata"]["managedFields"].array ?? []).first(where: {
            $0["manager"].string == manager && $0["operation"].string == "Apply" }) else { return patch }
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
        prune(prev["fieldsV1"], Patch.fieldSet(patch), [])
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
    func checkApplyConflicts(_ cur: JSON, _ patch: JSON, manager: String, force: Bool, r: ResourceType, name: String) throws {
        if force { return }
        var conflicts: [String] = []
        for entry in cur["metadata"]["managedFields"].array ?? [] {
            guard let other = entry["manager"].string, other != manager, entry["operation"].string == "Apply" else { continue }
            func walk(_ owned: JSON, _ path: [String]) {
                for (k, v) in owned.object ?? [:] where k.hasPrefix("f:") {
                    let p = path + [String(k.dropFirst(2))]
                    let applied = patch[p]
                    if applied.isNull { continue }
                    if (v.object ?? [:]).isEmpty {
                        if applied != cur[p] && applied.object == nil && applied.array == nil {
                            conflicts.append("conflict with \"\(other)\": ." + p.joined(separator: "."))
                        }
                    } else { walk(v, p) }
                }
            }
            walk(entry["fieldsV1"], [])
        }
        if !conflicts.isEmpty {
            throw APIError(code: 409, reason: "Conflict",
                           message: "Apply failed with \(conflicts.count) conflict\(conflicts.count == 1 ? "" : "s"): \(conflicts.joined(separator: "\n"))",
                           details: APIError.details(r, name, causes: conflicts.map { ["reason": "FieldManagerConflict", "message": .string($0)] }))
        }
    }

    // MARK: scale

    func scale(_ r: ResourceType, namespace: String?, name: String) async throws -> JSON {
        let obj = try await getObject(r, namespace: namespace, name: name)
        return Self.scaleOf(obj)
    }
    static func scaleOf(_ obj: JSON) -> JSON {
        ["kind": "Scale", "apiVersion": "autoscaling/v1",
         "metadata": ["name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"], "uid": obj["metadata"]["uid"],
                      "resourceVersion": obj["metadata"]["resourceVersion"], "creationTimestamp": obj["metadata"]["creationTimestamp"]],
         "spec": ["replicas": .int(obj["spec"]["replicas"].int ?? 0)],
         "status": ["replicas": .int(obj["status"]["replicas"].int ?? 0), "selector": .string(LabelSelector(object: obj["spec"]["selector"]).text)]]
    }

    func updateScale(_ call: Call, _ r: ResourceType, namespace: String?, name: String, patch: [UInt8]?) async throws -> JSON {
        for _ in 0..<Self.conflictRetries {
            guard let kv = try await store.get(r.key(namespace: namespace, name: name)) else { throw APIError.notFound(r, name) }
            let obj = try decodeStored(kv, r)
            var sc = Self.scaleOf(obj)
            let body = patch != nil ? try JSON.parse(call.body) : try bodyJSON(call, kind: "Scale")
            if patch != nil {
                switch call.contentType {
                case "application/json-patch+json": sc = try Patch.jsonPatch(sc, body)
                default: sc = Patch.merge(sc, body)
                }
            } else {
                sc = body
                if let rv = sc["metadata"]["resourceVersion"].string, !rv.isEmpty, rv != String(kv.modRevision) { throw APIError.conflict(r, name) }
            }
            // A Scale without a resourceVersion (what `UpdateScale` sends after clearing it) is an
            // unconditional update: a controller's write in between is retried, not a 409.
            let retries = patch != nil || (body["metadata"]["resourceVersion"].string ?? "").isEmpty
            // ScaleSpec.replicas is omitempty upstream: a Scale for 0 replicas arrives without it.
            guard let replicas = sc["spec"]["replicas"].isNull ? 0 : sc["spec"]["replicas"].int, replicas >= 0 else {
                throw APIError(code: 422, reason: "Invalid", message: "Scale.autoscaling \"\(name)\" is invalid: spec.replicas: Invalid value: \(sc["spec"]["replicas"].text): must be greater than or equal to 0")
            }
            var updated = obj
            updated["spec"]["replicas"] = .int(replicas)
            updated["metadata"]["resourceVersion"] = .null
            do {
                let out = try await updateObject(r, namespace: namespace, name: name, new: updated, subresource: nil, call: call,
                                                 expected: kv.modRevision, current: kv)
                return Self.scaleOf(out)
            } catch let e as APIError where e.reason == "Conflict" && retries { continue }
        }
        throw APIError.conflict(r, name)
    }

    // MARK: binding

    func bind(_ call: Call, namespace: String, name: String?) async throws -> Response {
        let b = try bodyJSON(call, kind: "Binding")
        let podName = name ?? b["metadata"]["name"].string ?? ""
        guard let node = b["target"]["name"].string, !node.isEmpty else {
            throw APIError(code: 422, reason: "Invalid", message: "Binding \"\(podName)\" is invalid: target.name: Required value")
        }
        let pods = Registry.find(group: "", version: "v1", plural: "pods")!
        for _ in 0..<Self.conflictRetries {
            guard let kv = try await store.get(pods.key(namespace: namespace, name: podName)) else { throw APIError.notFound(pods, podName) }
            var pod = try decodeStored(kv, pods)
            if let existing = pod["spec"]["nodeName"].string, !existing.isEmpty {
                throw APIError(code: 409, reason: "Conflict", message: "Operation cannot be fulfilled on pods/binding \"\(podName)\": pod \(podName) is already assigned to node \"\(existing)\"")
            }
            pod["spec"]["nodeName"] = .string(node)
            var conds = (pod["status"]["conditions"].array ?? []).filter { $0["type"].string != "PodScheduled" }
            conds.append(["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(Self.now())])
            pod["status"]["conditions"] = .array(conds)
            pod["metadata"]["resourceVersion"] = .null
            do {
                let rev = try await store.update(kv.key, value: encodeForStore(pod), expectedRevision: kv.modRevision)
                _ = rev
                return Self.json(["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success", "code": 201], status: 201)
            } catch StoreError.conflict { continue }
        }
        throw APIError.conflict(pods, podName)
    }

    // MARK: delete

    /// policy/v1 Eviction (pods/eviction, what `kubectl drain` posts): the pod is deleted with the
    /// eviction's deleteOptions. No PodDisruptionBudgets are served, so no budget refuses it.
    func evict(_ call: Call, namespace: String, name: String) async throws -> Response {
        let eviction = try bodyJSON(call, kind: "Eviction")
        if let named = eviction["metadata"]["name"].string, !named.isEmpty, named != name {
            throw APIError.badRequest("name in URL does not match name in Eviction object")
        }
        let pods = Registry.pods
        _ = try await deleteObject(call, pods, namespace: namespace, name: name, options: eviction["deleteOptions"].object.map { .object($0) } ?? [:])
        return Self.json(["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success", "code": 201], status: 201)
    }

    func deleteObject(_ call: Call, _ r: ResourceType, namespace: String?, name: String, options: JSON? = nil) async throws -> Response {
        var opts: JSON = options ?? [:]
        if options == nil, !call.body.isEmpty { opts = (try? bodyJSON(call, kind: "DeleteOptions")) ?? [:] }
        let policy = call.query["propagationPolicy"] ?? opts["propagationPolicy"].string ?? (opts["orphanDependents"].bool == true ? "Orphan" : "Background")
        let grace = Int64(call.query["gracePeriodSeconds"] ?? "") ?? opts["gracePeriodSeconds"].int
        let key = r.key(namespace: namespace, name: name)
        for _ in 0..<Self.conflictRetries {
            guard let kv = try await store.get(key) else { throw APIError.notFound(r, name) }
            var obj = try decodeStored(kv, r)
            if let uid = opts["preconditions"]["uid"].string, uid != obj["metadata"]["uid"].string {
                throw APIError(code: 409, reason: "Conflict", message: "Precondition failed: UID in precondition: \(uid), UID in object meta: \(obj["metadata"]["uid"].string ?? "")")
            }
            if let rv = opts["preconditions"]["resourceVersion"].string, rv != String(kv.modRevision) { throw APIError.conflict(r, name) }
            if r.kind == "Namespace" && server.config.namespaceController && !(obj["spec"]["finalizers"].array ?? []).isEmpty {
                // Upstream's namespace deletion: mark it Terminating; the namespace controller deletes its
                // contents and then removes the "kubernetes" finalizer (namespaces/finalize), which deletes it.
                if !obj["metadata"]["deletionTimestamp"].isNull {
                    throw APIError(code: 409, reason: "Conflict",
                                   message: "Operation cannot be fulfilled on namespaces \"\(name)\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
                                   details: APIError.details(r, name))
                }
                obj["metadata"]["deletionTimestamp"] = .string(Self.now())
                obj["status"]["phase"] = "Terminating"
                if call.dryRun { return reply(call, obj) }
                obj["metadata"]["resourceVersion"] = .null
                do {
                    let rev = try await store.update(key, value: encodeForStore(obj), expectedRevision: kv.modRevision)
                    obj["metadata"]["resourceVersion"] = .string(String(rev))
                    return reply(call, obj)
                } catch StoreError.conflict { continue }
            }
            var finalizers = (obj["metadata"]["finalizers"].array ?? []).compactMap(\.string)
            if policy == "Foreground" && !finalizers.contains("foregroundDeletion") { finalizers.append("foregroundDeletion") }
            if policy == "Orphan" && !finalizers.contains("orphan") && r.kind != "Pod" { finalizers.append("orphan") }
            // Graceful pod deletion: a pod running on a node is marked and the node agent finishes it.
            let podGrace = r.kind == "Pod" && !(obj["spec"]["nodeName"].string ?? "").isEmpty
                && !["Succeeded", "Failed"].contains(obj["status"]["phase"].string ?? "")
                ? (grace ?? obj["spec"]["terminationGracePeriodSeconds"].int ?? 30) : 0
            if call.dryRun { return reply(call, obj) }
            let needsMark = !finalizers.isEmpty || podGrace > 0
            if needsMark {
                if !obj["metadata"]["deletionTimestamp"].isNull && podGrace > 0 && obj["metadata"]["deletionGracePeriodSeconds"].int ?? 0 <= podGrace
                    && finalizers == (obj["metadata"]["finalizers"].array ?? []).compactMap(\.string) {
                    return reply(call, obj)
                }
                if obj["metadata"]["deletionTimestamp"].isNull { obj["metadata"]["deletionTimestamp"] = .string(Self.now()) }
                obj["metadata"]["deletionGracePeriodSeconds"] = .int(podGrace)
                // Orphan and foreground finalizers are handled right here (the GC controller's job upstream).
                if finalizers.contains("orphan") {
                    await collectGarbage(owner: obj, policy: "Orphan")
                    finalizers.removeAll { $0 == "orphan" }
                }
                if finalizers.contains("foregroundDeletion") {
                    await collectGarbage(owner: obj, policy: "Foreground")
                    finalizers.removeAll { $0 == "foregroundDeletion" }
                }
                obj["metadata"]["finalizers"] = finalizers.isEmpty ? .null : .array(finalizers.map { .string($0) })
                if !finalizers.isEmpty || podGrace > 0 {
                    obj["metadata"]["resourceVersion"] = .null
                    do {
                        let rev = try await store.update(key, value: encodeForStore(obj), expectedRevision: kv.modRevision)
                        obj["metadata"]["resourceVersion"] = .string(String(rev))
                        return reply(call, obj, status: 202)
                    } catch StoreError.conflict { continue }
                }
            }
            do {
                let gone = try await store.delete(key, expectedRevision: kv.modRevision)
                obj["metadata"]["resourceVersion"] = .string(String(gone.modRevision))
            } catch StoreError.conflict { continue } catch StoreError.notFound { throw APIError.notFound(r, name) }
            if policy != "Orphan" && policy != "Foreground" { await collectGarbage(owner: obj, policy: "Background") }
            if r.kind == "Namespace" { Task { await self.deleteNamespaceContents(name) } }
            return reply(call, obj)
        }
        throw APIError.conflict(r, name)
    }

    func deleteCollection(_ call: Call, _ r: ResourceType, namespace: String?) async throws -> Response {
        let labels = try LabelSelector(call.query["labelSelector"] ?? "")
        let fields = try FieldSelector(call.query["fieldSelector"] ?? "", for: r)
        let page = try await store.list(prefix: r.prefix(namespace: namespace), startAfter: nil, limit: 0, revision: nil)
        var deleted: [JSON] = []
        for kv in page.items {
            let obj = try decodeStored(kv, r)
            if !labels.matches(obj["metadata"]["labels"].stringMap) || !fields.matches(obj) { continue }
            _ = try? await deleteObject(call, r, namespace: obj["metadata"]["namespace"].string, name: obj["metadata"]["name"].string ?? "")
            deleted.append(obj)
        }
        return reply(call, ["kind": .string(r.listKind), "apiVersion": .string(r.apiVersion), "metadata": [:], "items": .array(deleted)])
    }

    func deleteNamespaceContents(_ ns: String) async {
        for r in Registry.all where r.namespaced {
            guard let page = try? await store.list(prefix: r.prefix(namespace: ns), startAfter: nil, limit: 0, revision: nil) else { continue }
            for kv in page.items { _ = try? await store.delete(kv.key, expectedRevision: nil) }
        }
    }

    /// Garbage collection of dependents (ownerReferences): Background/Foreground delete them, Orphan
    /// removes the owner reference.
    func collectGarbage(owner: JSON, policy: String) async {
        guard let uid = owner["metadata"]["uid"].string else { return }
        // Kinds that (almost) never own anything are left to the garbage collector controller: scanning
        // a namespace for the dependents of every deleted pod would make bulk deletes quadratic.
        if ["Pod", "Event", "Lease", "Endpoints", "EndpointSlice"].contains(owner["kind"].string ?? "") { return }
        func ownerRefs(of o: JSON) -> [JSON] { o["metadata"]["ownerReferences"].array ?? [] }
        let ns = owner["metadata"]["namespace"].string
        let needle = Array(uid.utf8)
        for r in Registry.all {
            let prefix = r.namespaced ? r.prefix(namespace: ns ?? "") : r.keyPrefix
            if ns != nil && !r.namespaced { continue }
            guard let page = try? await store.list(prefix: prefix, startAfter: nil, limit: 0, revision: nil) else { continue }
            for kv in page.items {
                // Only objects whose bytes mention the owner's uid are worth decoding.
                guard ByteSearch.contains(kv.value, needle), var dep = try? decodeStored(kv, r) else { continue }
                let refs = dep["metadata"]["ownerReferences"].array ?? []
                guard refs.contains(where: { $0["uid"].string == uid }) else { continue }
                if policy == "Orphan" {
                    // Retried on conflicts: a reference left behind would make the garbage collector
                    // delete a dependent that was meant to be orphaned.
                    var current = kv
                    for _ in 0..<Self.conflictRetries {
                        let rest = ownerRefs(of: dep).filter { $0["uid"].string != uid }
                        if rest.count == ownerRefs(of: dep).count { break }
                        dep["metadata"]["ownerReferences"] = rest.isEmpty ? .null : .array(rest)
                        dep["metadata"]["resourceVersion"] = .null
                        do {
                            _ = try await store.update(current.key, value: encodeForStore(dep), expectedRevision: current.modRevision)
                            break
                        } catch StoreError.conflict {
                            guard let fresh = try? await store.get(current.key), let d = try? decodeStored(fresh, r) else { break }
                            current = fresh; dep = d
                        } catch { break }
                    }
                } else if Self.needsGracefulDeletion(dep, r) {
                    // A running pod (its node agent stops it) or an object with finalizers is only marked,
                    // as a DELETE request would.
                    if !dep["metadata"]["deletionTimestamp"].isNull { continue }
                    dep["metadata"]["deletionTimestamp"] = .string(Self.now())
                    if r.kind == "Pod" { dep["metadata"]["deletionGracePeriodSeconds"] = .int(dep["spec"]["terminationGracePeriodSeconds"].int ?? 30) }
                    _ = try? await store.update(kv.key, value: encodeForStore(dep), expectedRevision: kv.modRevision)
                } else if let gone = try? await store.delete(kv.key, expectedRevision: nil) {
                    var d = dep
                    d["metadata"]["resourceVersion"] = .string(String(gone.modRevision))
                    await collectGarbage(owner: d, policy: policy == "Foreground" ? "Foreground" : "Background")
                }
            }
        }
    }

    static func needsGracefulDeletion(_ obj: JSON, _ r: ResourceType) -> Bool {
        if !(obj["metadata"]["finalizers"].array ?? []).isEmpty { return true }
        return r.kind == "Pod" && !(obj["spec"]["nodeName"].string ?? "").isEmpty
            && !["Succeeded", "Failed"].contains(obj["status"]["phase"].string ?? "")
    }
}
