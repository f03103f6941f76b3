import BerthAPI
import Foundation
import Logging

/// The DaemonSet controller: one pod of each apps/v1 DaemonSet on every node it may run on, as
/// kube-controller-manager's daemonset controller does.
///
/// A node is eligible when it matches the template's nodeSelector and required node affinity and the
/// pod tolerates the node's NoSchedule/NoExecute taints; daemon pods get upstream's automatic
/// tolerations (not-ready and unreachable without a time limit, the pressure and unschedulable taints),
/// so they stay on sick nodes and land on cordoned ones. Pods are not bound here: like upstream each gets
/// a required node affinity on `metadata.name` and the scheduler binds it, so node resources are still
/// accounted in one place. Pods on nodes no longer eligible, failed pods and duplicates are deleted.
/// RollingUpdate replaces pods whose `controller-revision-hash` label differs from the template's hash,
/// keeping at most maxUnavailable daemon pods unavailable — or, with maxSurge, starting the new pod beside
/// the old one on up to maxSurge nodes and removing the old one once the new one is available; OnDelete
/// leaves old pods alone.
///
/// The informer cache lags behind the controller's own writes, so after creating or deleting pods a
/// DaemonSet waits until the cache shows those changes before deciding again (upstream's
/// "expectations"); otherwise a quick second sync would create a second pod on the same node.
struct DaemonSetController: ControlLoop {
    let name = "daemonset-controller"
    let queue = WorkQueue(name: "daemonsets")
    let client: LocalClient
    let daemonSets: UntypedInformer
    let pods: UntypedInformer
    let nodes: UntypedInformer
    let events: EventRecorder
    let logger: Logger
    let workers: Int
    let memory = DaemonSetMemory()

    /// Pods by the UID of the DaemonSet that controls them.
    static let ownerIndex = "controller"
    static let hashLabel = "controller-revision-hash"
    /// Cap on pod creations in flight for one DaemonSet.
    static let createBurst = 64

    init(_ ctx: ControllerContext) {
        client = ctx.localClient("daemon-set-controller")
        events = ctx.events
        logger = ctx.logger
        workers = ctx.config.workers
        daemonSets = ctx.informers.informer(Registry.daemonSets)
        pods = ctx.informers.informer(Registry.pods)
        nodes = ctx.informers.informer(Registry.nodes)
        // The index the ReplicaSet and Deployment controllers keep too (UIDs are unique, so a DaemonSet's
        // UID finds exactly its pods): one index maintained on every pod event, not two.
        pods.addIndex(Self.ownerIndex, Objects.controllerUID)
        let (queue, daemonSets) = (self.queue, self.daemonSets)
        // Handlers must not wait: each key is added by a task of its own.
        daemonSets.onChange { e in
            let key = UntypedInformer.key(e.object)
            Task { await queue.add(key) }
        }
        pods.onChange { e in
            var keys: Set<String> = []
            switch e {
            case .added(let p), .deleted(let p): if let k = Self.ownerKey(p) { keys.insert(k) }
            case .updated(let old, let new):
                if let k = Self.ownerKey(old) { keys.insert(k) }
                if let k = Self.ownerKey(new) { keys.insert(k) }
            }
            for k in keys { Task { await queue.add(k) } }
        }
        // Heartbeats are most node updates: only what decides placement is worth a resync of every DaemonSet.
        nodes.onChange { e in
            if case .updated(let old, let new) = e, Self.placementFields(old) == Self.placementFields(new) { return }
            for ds in daemonSets.list() {
                let key = UntypedInformer.key(ds)
                Task { await queue.add(key) }
            }
        }
    }

    func run() async {
        let logger = self.logger
        await runWorkers(
            queue, count: workers, sync: { try await sync($0) },
            onError: { key, error in
                if Task.isCancelled { return }  // stopping (no longer leader, or shutting down)
                if let e = error as? APIError, [404, 409].contains(e.code) {
                    logger.debug("daemonset sync retried", metadata: ["key": "\(key)", "error": "\(e)"])
                } else {
                    logger.warning("daemonset sync failed", metadata: ["key": "\(key)", "error": "\(error)"])
                }
            })
    }

    // MARK: sync

    func sync(_ key: String) async throws {
        guard let ds = daemonSets.get(key) else {
            // Deleted: the API's garbage collector removes its pods (they have it as owner).
            memory.forget(key)
            return
        }
        let hash = Self.templateHash(ds)
        let template = Self.podTemplate(ds, hash: hash)
        let selector = LabelSelector(object: ds["spec"]["selector"])
        let nodeList = nodes.list().sorted {
            ($0["metadata"]["name"].string ?? "") < ($1["metadata"]["name"].string ?? "")
        }
        // Node name → this DaemonSet's pods meant for it (bound, or still carrying the node affinity).
        var byNode: [String: [JSON]] = [:]
        for pod in pods.byIndex(Self.ownerIndex, ds["metadata"]["uid"].string ?? "")
        where selector.matches(pod["metadata"]["labels"].stringMap) {
            if let node = Self.targetNode(pod) { byNode[node, default: []].append(pod) }
        }
        for n in byNode.keys { byNode[n]!.sort(by: Self.olderFirst) }
        let now = Date()
        var recheck: TimeInterval?

        let expectationsMet = memory.satisfied(key, pods: pods)
        // Normally the pod events that meet the expectations requeue the DaemonSet; this is a safety net.
        if !expectationsMet { recheck = 1 }
        if ds["metadata"]["deletionTimestamp"].isNull && expectationsMet {
            var creates: [String] = []
            var deletes: [JSON] = []
            let surges = Self.maxSurge(ds, desired: nodeList.count) > 0
            let minReady = ds["spec"]["minReadySeconds"].int ?? 0
            for node in nodeList {
                let nodeName = node["metadata"]["name"].string ?? ""
                let (shouldRun, shouldContinue) = DaemonPlacement.evaluate(template["spec"], on: node)
                let daemonPods = byNode[nodeName] ?? []
                if shouldRun && daemonPods.isEmpty {
                    creates.append(nodeName)
                } else if shouldContinue {
                    var running: [JSON] = []
                    for pod in daemonPods where pod["metadata"]["deletionTimestamp"].isNull {
                        let phase = pod["status"]["phase"].string
                        guard phase == "Failed" || phase == "Succeeded" else { running.append(pod); continue }
                        // A pod the node rejected again and again would be replaced in a hot loop: back off.
                        if phase == "Failed", let wait = memory.failureBackoff(key, node: nodeName, now: now) {
                            recheck = min(recheck ?? wait, wait)
                            continue
                        }
                        deletes.append(pod)
                    }
                    deletes += Self.extraPods(running, hash: hash, surge: surges, minReady: minReady, now: now)
                } else {
                    deletes += daemonPods.filter { $0["metadata"]["deletionTimestamp"].isNull }
                }
            }
            // Unbound pods aimed at a node that no longer exists would stay Pending for ever.
            let names = Set(nodeList.compactMap { $0["metadata"]["name"].string })
            for (node, ps) in byNode where !names.contains(node) {
                deletes += ps.filter {
                    ($0["spec"]["nodeName"].string ?? "").isEmpty && $0["metadata"]["deletionTimestamp"].isNull
                }
            }
            // Replacing old pods waits until the set of pods is right (the next sync, once expectations are met).
            if creates.isEmpty && deletes.isEmpty
                && (ds["spec"]["updateStrategy"]["type"].string ?? "RollingUpdate") == "RollingUpdate"
            {
                let desired = nodeList.filter { DaemonPlacement.evaluate(template["spec"], on: $0).shouldRun }.count
                let surge = Self.maxSurge(ds, desired: desired)
                if surge > 0 {
                    (creates, deletes) = rollingUpdateWithSurge(
                        ds, byNode: byNode, hash: hash, maxSurge: surge, now: now)
                } else {
                    deletes = rollingUpdateDeletions(ds, byNode: byNode, hash: hash, desired: desired, now: now)
                }
            }
            try await apply(ds, key: key, template: template, creates: creates, deletes: deletes)
        }
        recheck = [
            recheck,
            try await updateStatus(ds, nodes: nodeList, byNode: byNode, hash: hash, template: template, now: now),
        ]
        .compactMap { $0 }.min()
        if let recheck { queue.add(key, after: .milliseconds(Int64(recheck * 1000) + 10)) }
    }

    /// `pods` split into those of the template's revision (`hash`) and the older ones, order kept.
    static func byRevision(_ pods: [JSON], hash: String) -> (new: [JSON], old: [JSON]) {
        var new: [JSON] = []
        var old: [JSON] = []
        for pod in pods {
            if pod["metadata"]["labels"][hashLabel].string == hash { new.append(pod) } else { old.append(pod) }
        }
        return (new, old)
    }

    /// `rollingUpdate.maxSurge` as a number of nodes (percentages round up, as upstream's).
    static func maxSurge(_ ds: JSON, desired: Int) -> Int {
        let spec = ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"]
        guard (ds["spec"]["updateStrategy"]["type"].string ?? "RollingUpdate") == "RollingUpdate", !spec.isNull else {
            return 0
        }
        return max(0, Int(Objects.intOrPercent(spec, total: Int64(desired), roundUp: true)))
    }

    /// Of the running pods on one node, those to delete. Without surge all but the oldest. With surge, as
    /// upstream: an old pod stays beside a new one only while the new one is not yet available and the old
    /// one is; otherwise the oldest new pod (or, with none, the oldest old one) alone stays.
    static func extraPods(_ running: [JSON], hash: String, surge: Bool, minReady: Int64, now: Date) -> [JSON] {
        guard running.count > 1 else { return [] }
        guard surge else { return Array(running.dropFirst()) }
        let (new, old) = byRevision(running, hash: hash)
        var keep: [JSON] = []
        if let newest = new.first {
            keep.append(newest)
            if let previous = old.first, !Objects.isAvailable(newest, minReadySeconds: minReady, now: now),
                Objects.isAvailable(previous, minReadySeconds: minReady, now: now)
            {
                keep.append(previous)
            }
        } else if let previous = old.first {
            keep.append(previous)
        }
        let kept = Set(keep.compactMap { $0["metadata"]["uid"].string })
        return running.filter { !kept.contains($0["metadata"]["uid"].string ?? "") }
    }

    /// Upstream's rolling update with surge: a new pod starts beside the old one on up to maxSurge nodes at
    /// a time (at once where the old one is unavailable anyway); the old pod goes when the new one is
    /// available, so with maxUnavailable 0 no node is ever without an available daemon pod.
    func rollingUpdateWithSurge(_ ds: JSON, byNode: [String: [JSON]], hash: String, maxSurge: Int, now: Date) -> (
        creates: [String], deletes: [JSON]
    ) {
        let minReady = ds["spec"]["minReadySeconds"].int ?? 0
        var surging = 0
        var creates: [String] = []
        var deletes: [JSON] = []
        var waiting: [String] = []
        for node in byNode.keys.sorted() {
            let (new, old) = Self.byRevision(
                byNode[node]!.filter { $0["metadata"]["deletionTimestamp"].isNull }, hash: hash)
            guard let previous = old.first else { continue }
            if let newest = new.first {
                if Objects.isAvailable(newest, minReadySeconds: minReady, now: now) {
                    deletes += old
                } else {
                    surging += 1
                }
            } else if !Objects.isAvailable(previous, minReadySeconds: minReady, now: now) {
                creates.append(node)
            } else {
                waiting.append(node)
            }
        }
        creates += waiting.prefix(max(0, maxSurge - surging))
        return (creates, deletes)
    }

    /// Upstream's rolling update without surge: old pods that are unavailable anyway go at once; available
    /// ones only while fewer than maxUnavailable daemon pods are unavailable.
    func rollingUpdateDeletions(_ ds: JSON, byNode: [String: [JSON]], hash: String, desired: Int, now: Date) -> [JSON] {
        // Percentages round up, as upstream's; zero (invalid without surge) falls back to upstream's default of 1.
        let spec = ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"]
        var maxUnavailable = spec.isNull ? 1 : Int(Objects.intOrPercent(spec, total: Int64(desired), roundUp: true))
        if desired > 0 && maxUnavailable <= 0 { maxUnavailable = 1 }
        let minReady = ds["spec"]["minReadySeconds"].int ?? 0
        var unavailable = 0
        var replaceNow: [JSON] = []
        var candidates: [JSON] = []
        for node in byNode.keys.sorted() {
            let (new, old) = Self.byRevision(
                byNode[node]!.filter { $0["metadata"]["deletionTimestamp"].isNull }, hash: hash)
            if new.count > 1 || old.count > 1 || new.count == old.count {
                unavailable += 1  // duplicates, nothing yet, or a replacement under way: the manage pass handles it
            } else if let pod = new.first {
                if !Objects.isAvailable(pod, minReadySeconds: minReady, now: now) { unavailable += 1 }
            } else if let pod = old.first {
                if !Objects.isAvailable(pod, minReadySeconds: minReady, now: now) {
                    replaceNow.append(pod)
                } else if unavailable < maxUnavailable {
                    candidates.append(pod)
                }
            }
        }
        let room = max(0, min(maxUnavailable - unavailable, candidates.count))
        return replaceNow + candidates.prefix(room)
    }

    /// Creates pods for `creates` (node names) and deletes `deletes`, then records what the cache must show.
    private func apply(_ ds: JSON, key: String, template: JSON, creates: [String], deletes: [JSON]) async throws {
        if creates.isEmpty && deletes.isEmpty { return }
        let (client, events) = (self.client, self.events)
        var firstError: (any Error)?
        var createdRevision: Int64 = 0
        var deleted: [(key: String, uid: String)] = []
        await withTaskGroup(of: Result<Int64, any Error>.self) { g in
            var inFlight = 0
            func collect(_ r: Result<Int64, any Error>) {
                switch r {
                case .success(let rev): createdRevision = max(createdRevision, rev)
                case .failure(let e): if firstError == nil { firstError = e }
                }
            }
            for node in creates {
                if inFlight >= Self.createBurst, let r = await g.next() { collect(r); inFlight -= 1 }
                if firstError != nil { break }
                let pod = Self.newPod(ds, template: template, node: node)
                g.addTask {
                    do {
                        let created = try await client.create(Registry.pods, pod)
                        events.record(
                            ds, reason: "SuccessfulCreate",
                            message: "Created pod: \(created["metadata"]["name"].string ?? "")")
                        return .success(Int64(created["metadata"]["resourceVersion"].string ?? "") ?? 0)
                    } catch {
                        events.record(ds, type: "Warning", reason: "FailedCreate", message: "Error creating: \(error)")
                        return .failure(error)
                    }
                }
                inFlight += 1
            }
            for await r in g { collect(r) }
        }
        for pod in deletes {
            let name = pod["metadata"]["name"].string ?? ""
            let uid = pod["metadata"]["uid"].string ?? ""
            do {
                try await client.delete(
                    Registry.pods, namespace: pod["metadata"]["namespace"].string, name: name, uid: uid)
                deleted.append((UntypedInformer.key(pod), uid))
                events.record(ds, reason: "SuccessfulDelete", message: "Deleted pod: \(name)")
                if pod["status"]["phase"].string == "Failed", let node = Self.targetNode(pod) {
                    memory.failed(key, node: node, now: Date())
                }
            } catch let e as APIError
                where e.code == 404 || (e.code == 409 && e.message.hasPrefix("Precondition failed"))
            {
                // Already gone (or replaced by a namesake): nothing to wait for.
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        memory.expect(key, createdRevision: createdRevision, deleted: deleted, now: Date())
        if let firstError { throw firstError }
    }

    /// Writes the status counts (as `kubectl rollout status ds/x` reads them) when they changed. Returns
    /// when to look again because a ready pod becomes available (minReadySeconds).
    private func updateStatus(
        _ ds: JSON, nodes nodeList: [JSON], byNode: [String: [JSON]], hash: String, template: JSON,
        now: Date
    ) async throws -> TimeInterval? {
        let minReady = ds["spec"]["minReadySeconds"].int ?? 0
        var desired: Int64 = 0, current: Int64 = 0, misscheduled: Int64 = 0, ready: Int64 = 0, available: Int64 = 0,
            updated: Int64 = 0
        var recheck: TimeInterval?
        for node in nodeList {
            let daemonPods = byNode[node["metadata"]["name"].string ?? ""] ?? []
            guard DaemonPlacement.evaluate(template["spec"], on: node).shouldRun else {
                if !daemonPods.isEmpty { misscheduled += 1 }
                continue
            }
            desired += 1
            guard let pod = daemonPods.first else { continue }
            current += 1
            if Objects.isReady(pod) {
                ready += 1
                if Objects.isAvailable(pod, minReadySeconds: minReady, now: now) {
                    available += 1
                } else if let since = Self.readySince(pod) {
                    let wait = since.addingTimeInterval(TimeInterval(minReady)).timeIntervalSince(now)
                    recheck = min(recheck ?? wait, max(wait, 0))
                }
            }
            if pod["metadata"]["labels"][Self.hashLabel].string == hash { updated += 1 }
        }
        var status = ds["status"]
        // Upstream's omitempty: the first four are always written, the others only when non-zero.
        let counts: [(String, Int64, Bool)] = [
            ("desiredNumberScheduled", desired, true), ("currentNumberScheduled", current, true),
            ("numberMisscheduled", misscheduled, true), ("numberReady", ready, true),
            ("updatedNumberScheduled", updated, false), ("numberAvailable", available, false),
            ("numberUnavailable", desired - available, false),
            ("observedGeneration", ds["metadata"]["generation"].int ?? 0, false),
        ]
        for (field, value, always) in counts { status[field] = always || value != 0 ? .int(value) : .null }
        if status == ds["status"] { return recheck }
        var obj = ds
        obj["status"] = status
        try await client.updateStatus(Registry.daemonSets, obj)
        return recheck
    }

    // MARK: pods

    /// The template every daemon pod is made from: the DaemonSet's, plus the automatic tolerations and
    /// the hash label.
    static func podTemplate(_ ds: JSON, hash: String) -> JSON {
        var t = ds["spec"]["template"]
        t["metadata"]["labels"][hashLabel] = .string(hash)
        var tolerations = t["spec"]["tolerations"].array ?? []
        var automatic: [(String, String)] = [
            ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ]
        if t["spec"]["hostNetwork"].bool == true {
            automatic.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
        }
        for (key, effect) in automatic {
            let toleration: JSON = ["key": .string(key), "operator": "Exists", "effect": .string(effect)]
            // Upstream's AddOrUpdateToleration: one equal in key, operator, value and effect is replaced.
            let same: (JSON) -> Bool = {
                $0["key"].string == key && ($0["operator"].string ?? "Equal") == "Exists"
                    && ($0["value"].string ?? "").isEmpty
                    && $0["effect"].string == effect
            }
            if let i = tolerations.firstIndex(where: same) {
                tolerations[i] = toleration
            } else {
                tolerations.append(toleration)
            }
        }
        t["spec"]["tolerations"] = .array(tolerations)
        return t
    }

    /// A pod for `node`: named after the DaemonSet, controlled by it, and pinned to the node by affinity.
    static func newPod(_ ds: JSON, template: JSON, node: String) -> JSON {
        var meta: JSON = [
            "generateName": .string((ds["metadata"]["name"].string ?? "") + "-"),
            "namespace": ds["metadata"]["namespace"],
            "ownerReferences": [
                [
                    "apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds["metadata"]["name"],
                    "uid": ds["metadata"]["uid"],
                    "controller": true, "blockOwnerDeletion": true,
                ]
            ],
        ]
        for f in ["labels", "annotations", "finalizers"] { meta[f] = template["metadata"][f] }
        var spec = template["spec"]
        // Upstream's ReplaceDaemonSetPodNodeNameNodeAffinity: the required terms become this one node.
        let term: JSON = ["matchFields": [["key": "metadata.name", "operator": "In", "values": [.string(node)]]]]
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = [term]
        return ["apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec]
    }

    /// The node a daemon pod is for: where it is bound, else the node its affinity names (upstream's
    /// GetTargetNodeName).
    static func targetNode(_ pod: JSON) -> String? {
        if let n = pod["spec"]["nodeName"].string, !n.isEmpty { return n }
        let terms =
            pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"
            ].array ?? []
        for term in terms {
            for f in term["matchFields"].array ?? []
            where f["key"].string == "metadata.name" && f["operator"].string == "In" {
                let values = f["values"].array ?? []
                return values.count == 1 ? values[0].string : nil
            }
        }
        return nil
    }

    static func controllerRef(_ pod: JSON) -> (name: String, uid: String)? {
        guard let ref = Objects.controllerRef(pod), ref["kind"].string == "DaemonSet",
            ref["apiVersion"].string?.hasPrefix("apps/") == true,
            let name = ref["name"].string, let uid = ref["uid"].string
        else { return nil }
        return (name, uid)
    }

    static func ownerKey(_ pod: JSON) -> String? {
        controllerRef(pod).map { (pod["metadata"]["namespace"].string ?? "") + "/" + $0.name }
    }

    /// Upstream's podByCreationTimestampAndPhase: bound pods first, then the oldest, then by name.
    static func olderFirst(_ a: JSON, _ b: JSON) -> Bool {
        let (ab, bb) = (!(a["spec"]["nodeName"].string ?? "").isEmpty, !(b["spec"]["nodeName"].string ?? "").isEmpty)
        if ab != bb { return ab }
        let (at, bt) = (
            a["metadata"]["creationTimestamp"].string ?? "", b["metadata"]["creationTimestamp"].string ?? ""
        )
        if at != bt { return at < bt }
        return (a["metadata"]["name"].string ?? "") < (b["metadata"]["name"].string ?? "")
    }

    static func readySince(_ pod: JSON) -> Date? {
        let c = (pod["status"]["conditions"].array ?? []).first {
            $0["type"].string == "Ready" && $0["status"].string == "True"
        }
        return APITime.parse(c?["lastTransitionTime"].string)
    }

    /// The revision hash of the template: FNV-1a (32-bit) of its JSON, spelled like upstream's
    /// ControllerRevision hashes (rand.SafeEncodeString of the decimal number). Equal templates always
    /// give equal hashes, in every process.
    static func templateHash(_ ds: JSON) -> String {
        var bytes = ds["spec"]["template"].serialized()
        if let c = ds["status"]["collisionCount"].int { bytes += Array(String(c).utf8) }
        let alphabet = Objects.safeAlphabet
        return String(String(Objects.fnv32(bytes)).utf8.map { alphabet[Int($0) % alphabet.count] })
    }

    /// What of a node decides where daemon pods go.
    static func placementFields(_ node: JSON) -> JSON {
        ["labels": node["metadata"]["labels"], "taints": node["spec"]["taints"]]
    }
}

/// Where a daemon pod may run: upstream's NodeShouldRunDaemonPod over the pod template.
enum DaemonPlacement {
    /// shouldRun: a pod belongs on the node; shouldContinueRunning: an existing one may stay (only
    /// untolerated NoExecute taints evict).
    static func evaluate(_ podSpec: JSON, on node: JSON) -> (shouldRun: Bool, shouldContinueRunning: Bool) {
        guard fits(podSpec, node) else { return (false, false) }
        let tolerations = podSpec["tolerations"].array ?? []
        var noSchedule = false, noExecute = false
        for taint in node["spec"]["taints"].array ?? [] where !tolerations.contains(where: { tolerates($0, taint) }) {
            switch taint["effect"].string {
            case "NoSchedule": noSchedule = true
            case "NoExecute": noExecute = true
            default: break
            }
        }
        return (!noSchedule && !noExecute, !noExecute)
    }

    /// spec.nodeName, nodeSelector and required node affinity.
    static func fits(_ podSpec: JSON, _ node: JSON) -> Bool {
        let name = node["metadata"]["name"].string ?? ""
        if let n = podSpec["nodeName"].string, !n.isEmpty, n != name { return false }
        let labels = node["metadata"]["labels"].stringMap
        for (k, v) in podSpec["nodeSelector"].stringMap where labels[k] != v { return false }
        let required = podSpec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        if required.isNull { return true }
        // Terms are ORed; within a term everything must hold; an empty term matches nothing.
        return (required["nodeSelectorTerms"].array ?? []).contains { term in
            let exprs = term["matchExpressions"].array ?? []
            let fields = term["matchFields"].array ?? []
            if exprs.isEmpty && fields.isEmpty { return false }
            return exprs.allSatisfy { matches($0, labels[$0["key"].string ?? ""]) }
                && fields.allSatisfy { matches($0, $0["key"].string == "metadata.name" ? name : nil) }
        }
    }

    /// A NodeSelectorRequirement against a label (or field) value.
    static func matches(_ req: JSON, _ value: String?) -> Bool {
        let values = (req["values"].array ?? []).compactMap(\.string)
        switch req["operator"].string {
        case "In": return value.map(values.contains) ?? false
        case "NotIn": return value.map { !values.contains($0) } ?? true
        case "Exists": return value != nil
        case "DoesNotExist": return value == nil
        case "Gt", "Lt":
            guard let v = value.flatMap({ Int64($0) }), values.count == 1, let bound = Int64(values[0]) else {
                return false
            }
            return req["operator"].string == "Gt" ? v > bound : v < bound
        default: return false
        }
    }

    /// Upstream's ToleratesTaint: an empty effect matches every effect; an empty key with Exists every key.
    static func tolerates(_ t: JSON, _ taint: JSON) -> Bool {
        if let e = t["effect"].string, !e.isEmpty, e != taint["effect"].string { return false }
        if let k = t["key"].string, !k.isEmpty, k != taint["key"].string { return false }
        switch t["operator"].string ?? "Equal" {
        case "Exists": return true
        case "Equal", "": return (t["value"].string ?? "") == (taint["value"].string ?? "")
        default: return false
        }
    }
}

/// What the DaemonSet controller remembers between syncs: writes the cache has not shown yet
/// (expectations) and the back-off for nodes whose daemon pods keep failing.
final class DaemonSetMemory: @unchecked Sendable {
    struct Pending {
        /// The revision of the last pod created: the pod informer must have reached it.
        var createdRevision: Int64
        /// Pods deleted that the cache still shows live.
        var deleted: [(key: String, uid: String)]
        /// Expectations are given up after this (a lost event must not wedge a DaemonSet).
        var deadline: Date
    }
    private let lock = NSLock()
    private var pending: [String: Pending] = [:]
    private var failures: [String: (count: Int, next: Date)] = [:]

    func expect(_ key: String, createdRevision: Int64, deleted: [(key: String, uid: String)], now: Date) {
        lock.withLock {
            if createdRevision == 0 && deleted.isEmpty { return }
            var p = pending[key] ?? Pending(createdRevision: 0, deleted: [], deadline: now)
            p.createdRevision = max(p.createdRevision, createdRevision)
            p.deleted += deleted
            p.deadline = now.addingTimeInterval(30)
            pending[key] = p
        }
    }

    /// True when the cache shows every create and delete of the last syncs (or they timed out).
    func satisfied(_ key: String, pods: UntypedInformer) -> Bool {
        lock.withLock {
            guard var p = pending[key] else { return true }
            p.deleted.removeAll { d in
                guard let pod = pods.get(d.key), pod["metadata"]["uid"].string == d.uid else { return true }
                return !pod["metadata"]["deletionTimestamp"].isNull
            }
            if (pods.revision >= p.createdRevision && p.deleted.isEmpty) || p.deadline < Date() {
                pending[key] = nil
                return true
            }
            pending[key] = p
            return false
        }
    }

    /// How long to wait before replacing a failed pod on `node` again (nil: now). Upstream starts at 1 s
    /// and doubles up to 15 min; here the cap is 5 min.
    func failureBackoff(_ key: String, node: String, now: Date) -> TimeInterval? {
        lock.withLock {
            guard let f = failures[key + "|" + node], f.next > now else { return nil }
            return f.next.timeIntervalSince(now)
        }
    }
    func failed(_ key: String, node: String, now: Date) {
        lock.withLock {
            let n = (failures[key + "|" + node]?.count ?? 0) + 1
            failures[key + "|" + node] = (n, now.addingTimeInterval(min(pow(2, Double(n - 1)), 300)))
        }
    }

    func forget(_ key: String) {
        lock.withLock {
            pending[key] = nil
            failures = failures.filter { !$0.key.hasPrefix(key + "|") }
        }
    }
}
