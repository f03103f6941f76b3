import BerthAPI
import BerthKube
import Foundation

/// Upstream's pkg/controller/history: the ControllerRevisions a DaemonSet or StatefulSet keeps of its
/// pod templates, which `kubectl rollout history` lists and `kubectl rollout undo` applies.
///
/// A revision's `data` is the strategic merge patch kubectl applies to the owner to see or restore that
/// revision: `{"spec":{"template":{…,"$patch":"replace"}}}` (the controllers' getPatch). It carries the
/// owner's template labels plus `controller-revision-hash`, so the owner's selector finds it, and the
/// owner as its controller, so kubectl (which filters by controller UID) and the garbage collector know
/// whose it is.
enum ControllerHistory {
    typealias Revision = AppsV1.ControllerRevision

    static let hashLabel = "controller-revision-hash"

    /// The patch that replaces the owner's template with `template` (what `data` holds). Its bytes are
    /// those kubectl's getDaemonSetPatch/getStatefulSetPatch make of the owner — Go's encoding, keys
    /// sorted, an unset creationTimestamp written `null` — because `rollout undo` compares them to tell
    /// that the owner already runs a revision ("skipped rollback").
    static func patch(_ template: CoreV1.PodTemplateSpec) -> JSON {
        var json = DaemonSetController.storedForm(template)
        var metadata = json["metadata"].object ?? [:]
        if template.metadata.creationTimestamp == nil { metadata.updateValue(.null, forKey: "creationTimestamp") }
        json["metadata"] = .object(metadata)
        json["$patch"] = "replace"
        return ["spec": ["template": json]]
    }

    /// The template a revision's `data` restores (nil when it is not a template patch).
    static func template(of revision: Revision) -> CoreV1.PodTemplateSpec? {
        var json = revision.data.value["spec"]["template"]
        guard json.object != nil else { return nil }
        json["$patch"] = .null
        return try? CoreV1.PodTemplateSpec(kubeJSON: json)
    }

    /// HashControllerRevision: FNV-1 (32-bit, as Go's fnv.New32) of the data's bytes and the collision
    /// count, spelled by SafeEncodeString over its decimal digits.
    static func hash(_ data: JSON, collisionCount: Int32?) -> String {
        var h: UInt32 = 0x811c_9dc5
        var bytes = data.serialized()
        if let c = collisionCount { bytes += Array(String(c).utf8) }
        for b in bytes { h = (h &* 0x0100_0193) ^ UInt32(b) }
        let alphabet = Objects.safeAlphabet
        return String(String(h).utf8.map { alphabet[Int($0) % alphabet.count] })
    }

    /// ControllerRevisionName: the owner's name (cut to 223 characters) and the hash.
    static func name(owner: String, hash: String) -> String {
        String(owner.prefix(223)) + "-" + hash
    }

    /// The number the next revision gets: one past the highest (1 for the first).
    static func nextRevision(_ revisions: [Revision]) -> Int64 {
        (revisions.map(\.revision).max() ?? 0) + 1
    }

    /// A new revision of `owner` holding `data`.
    static func make<Owner: KubeObject & HasObjectMeta>(
        owner: Owner, templateLabels: [String: String], data: JSON, hash: String, revision: Int64
    ) -> Revision {
        var cr = Revision()
        cr.metadata.name = name(owner: owner.metadata.name ?? "", hash: hash)
        cr.metadata.namespace = owner.metadata.namespace
        cr.metadata.labels = templateLabels
        cr.metadata.labels[hashLabel] = hash
        // The owner's annotations (kubernetes.io/change-cause is what `rollout history` shows).
        cr.metadata.annotations = owner.metadata.annotations
        cr.metadata.ownerReferences = [owner.controllerOwnerReference]
        cr.data = RawExtension(data)
        cr.revision = revision
        return cr
    }

    /// Revisions holding the same data, oldest revision first (FindEqualRevisions). Null members are
    /// not compared: a revision written by another version of the controller may lack them.
    static func equal(_ revisions: [Revision], data: JSON) -> [Revision] {
        let wanted = withoutNulls(data)
        return revisions.filter { withoutNulls($0.data.value) == wanted }.sorted(by: byRevision)
    }

    static func withoutNulls(_ value: JSON) -> JSON {
        switch value {
        case .object(let members): return .object(members.filter { $0.value != .null }.mapValues(withoutNulls))
        case .array(let items): return .array(items.map(withoutNulls))
        default: return value
        }
    }

    static func byRevision(_ a: Revision, _ b: Revision) -> Bool {
        a.revision != b.revision ? a.revision < b.revision : (a.metadata.name ?? "") < (b.metadata.name ?? "")
    }

    /// Of the revisions not in `live` (names or hashes pods still carry), those beyond `limit`, oldest
    /// first: what truncating the history deletes. `current` is never among them.
    static func surplus(_ revisions: [Revision], live: Set<String>, keep: Set<String>, limit: Int) -> [Revision] {
        let old = revisions.filter { cr in
            let name = cr.metadata.name ?? ""
            return !keep.contains(name) && !live.contains(name)
                && !live.contains(cr.metadata.labels[hashLabel] ?? "\u{0}")
        }
        .sorted(by: byRevision)
        return Array(old.prefix(max(0, old.count - max(0, limit))))
    }
}

extension ControllerHistory {
    /// ClaimControllerRevisions: revisions no controller owns whose labels `selector` matches become the
    /// owner's (a set deleted with `--cascade=orphan` and made again keeps its history); revisions it
    /// controls that its selector no longer matches are released. Returns whether anything was written
    /// (the informer brings the revisions back changed, and their events sync the owner again).
    static func claim<Owner: KubeObject & HasObjectMeta>(
        _ owner: Owner, selector: BerthAPI.LabelSelector, revisions: Informer<Revision>, client: any KubeClient
    ) async throws -> Bool {
        guard let ns = owner.metadata.namespace, !selector.isEmpty, !owner.isTerminating else { return false }
        return try await ControllerRefManager.claim(
            revisions.list(namespace: ns), for: owner, selector: selector, client: client)
    }

    /// The key of the owner of `kind` a revision event concerns (its controller), for the owner's queue.
    static func ownerKey(_ cr: Revision, kind: String) -> String? {
        guard let ref = cr.controllerRef, ref.kind == kind, let ns = cr.metadata.namespace else { return nil }
        return Objects.key(namespace: ns, name: ref.name)
    }
}
